"""Admin tokens, access keys and enrollment tokens (registry) and the audit trails, as plain records.

Protobuf stays here. A token's secret appears once, in `CreatedToken`, an access key's
once, in `CreatedAccessKey` or `RotatedAccessKey`, an enrollment token's once, in `CreatedEnrollmentToken`; all
are kept out of their `repr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from outpost.audit.v1 import audit_pb2, audit_pb2_grpc
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpostctl.endpoints import Connection, Endpoints, time_field

_ROLE_PREFIX = "ROLE_"
_ACCESS_KEY_STATE_PREFIX = "ACCESS_KEY_STATE_"
_ENROLLMENT_TOKEN_STATE_PREFIX = "ENROLLMENT_TOKEN_STATE_"  # noqa: S105 (an enum prefix)


@dataclass(frozen=True)
class Token:
    name: str
    role: str
    created_at: datetime | None
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str
    last_used_at: datetime | None


@dataclass(frozen=True)
class CreatedToken:
    name: str
    role: str
    token: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AccessKeyInfo:
    """An access key as admins see it (field order is the JSON order): never its secret."""

    name: str
    key_id: str
    zone: str
    state: str
    created_at: datetime | None
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str
    replaced_by: str = ""
    """The key id that replaced this one (`access-keys rotate`); it stays valid until `expires_at`."""


@dataclass(frozen=True)
class CreatedAccessKey:
    info: AccessKeyInfo
    access_key: str = field(repr=False)
    server_key_fingerprint: str = ""


@dataclass(frozen=True)
class RotatedAccessKey:
    """The new key (its text shown once) and the key it replaced, with its new expiry."""

    info: AccessKeyInfo
    replaced: AccessKeyInfo
    access_key: str = field(repr=False)
    server_key_fingerprint: str = ""


@dataclass(frozen=True)
class EnrollmentTokenInfo:
    """An enrollment token as admins see it (field order is the JSON order): never its secret.

    `uses_allowed` 0: unlimited; `cidrs` empty: any source network.
    """

    name: str
    token_id: str
    zone: str
    state: str
    uses_used: int
    uses_allowed: int
    expires_at: datetime | None
    cidrs: list[str]
    created_at: datetime | None
    created_by: str
    revoked_at: datetime | None
    revoked_by: str


@dataclass(frozen=True)
class CreatedEnrollmentToken:
    info: EnrollmentTokenInfo
    enrollment_token: str = field(repr=False)


@dataclass(frozen=True)
class AuditEvent:
    at: datetime | None
    service: str
    method: str
    principal: str
    role: str
    peer: str
    target: str
    outcome: str
    detail: str
    id: int


class TokenClient(Connection):
    service = "registry"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.registry, endpoints)
        self._stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def create(self, name: str, role: str, expires_in_seconds: int) -> CreatedToken:
        request = registry_pb2.CreateTokenRequest(
            name=name, role=_ROLE_PREFIX + role.upper(), expires_in_seconds=expires_in_seconds
        )
        reply = self.call(self._stub.CreateToken, request)
        token = _token(reply.token)
        return CreatedToken(name=token.name, role=token.role, token=reply.secret, expires_at=token.expires_at)

    def list_page(self, *, include_revoked: bool, page_size: int, page_token: str) -> tuple[list[Token], str]:
        """One page of tokens by name and the next page's token ("" at the end)."""
        request = registry_pb2.ListTokensRequest(
            include_revoked=include_revoked, page_size=page_size, page_token=page_token
        )
        reply = self.call(self._stub.ListTokens, request)
        return [_token(t) for t in reply.tokens], reply.next_page_token

    def revoke(self, name: str) -> Token:
        reply = self.call(self._stub.RevokeToken, registry_pb2.RevokeTokenRequest(name=name))
        return _token(reply.token)


class AccessKeyClient(Connection):
    service = "registry"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.registry, endpoints)
        self._stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def create(self, name: str, *, zone: str, expires_in_seconds: int) -> CreatedAccessKey:
        request = registry_pb2.CreateAccessKeyRequest(name=name, zone=zone, expires_in_seconds=expires_in_seconds)
        reply = self.call(self._stub.CreateAccessKey, request)
        return CreatedAccessKey(
            info=_access_key(reply.access_key),
            access_key=reply.access_key_text,
            server_key_fingerprint=reply.server_key_fingerprint,
        )

    def rotate(self, name: str, *, overlap_seconds: int, expires_in_seconds: int) -> RotatedAccessKey:
        request = registry_pb2.RotateAccessKeyRequest(
            name=name, overlap_seconds=overlap_seconds, expires_in_seconds=expires_in_seconds
        )
        reply = self.call(self._stub.RotateAccessKey, request)
        return RotatedAccessKey(
            info=_access_key(reply.access_key),
            replaced=_access_key(reply.replaced),
            access_key=reply.access_key_text,
            server_key_fingerprint=reply.server_key_fingerprint,
        )

    def list_page(self, *, include_revoked: bool, page_size: int, page_token: str) -> tuple[list[AccessKeyInfo], str]:
        """One page of access keys by name and the next page's token ("" at the end)."""
        request = registry_pb2.ListAccessKeysRequest(
            include_revoked=include_revoked, page_size=page_size, page_token=page_token
        )
        reply = self.call(self._stub.ListAccessKeys, request)
        return [_access_key(k) for k in reply.access_keys], reply.next_page_token

    def revoke(self, name: str) -> AccessKeyInfo:
        reply = self.call(self._stub.RevokeAccessKey, registry_pb2.RevokeAccessKeyRequest(name=name))
        return _access_key(reply.access_key)


class EnrollmentTokenClient(Connection):
    service = "registry"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.registry, endpoints)
        self._stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def create(
        self, name: str, *, zone: str, uses: int, expires_in_seconds: int, cidrs: list[str]
    ) -> CreatedEnrollmentToken:
        request = registry_pb2.CreateEnrollmentTokenRequest(
            name=name, zone=zone, uses=uses, expires_in_seconds=expires_in_seconds, cidrs=cidrs
        )
        reply = self.call(self._stub.CreateEnrollmentToken, request)
        return CreatedEnrollmentToken(
            info=_enrollment_token(reply.enrollment_token), enrollment_token=reply.enrollment_token_text
        )

    def list_page(
        self, *, include_revoked: bool, page_size: int, page_token: str
    ) -> tuple[list[EnrollmentTokenInfo], str]:
        """One page of enrollment tokens by name and the next page's token ("" at the end)."""
        request = registry_pb2.ListEnrollmentTokensRequest(
            include_revoked=include_revoked, page_size=page_size, page_token=page_token
        )
        reply = self.call(self._stub.ListEnrollmentTokens, request)
        return [_enrollment_token(t) for t in reply.enrollment_tokens], reply.next_page_token

    def revoke(self, name: str) -> EnrollmentTokenInfo:
        reply = self.call(self._stub.RevokeEnrollmentToken, registry_pb2.RevokeEnrollmentTokenRequest(name=name))
        return _enrollment_token(reply.enrollment_token)


class AuditClient(Connection):
    """One service's trail; `service` names it in messages ("registry", "scheduler")."""

    def __init__(self, endpoints: Endpoints, service: str) -> None:
        self.service = service
        super().__init__(getattr(endpoints, service), endpoints)
        self._stub = audit_pb2_grpc.AuditServiceStub(self.channel)

    def page(self, *, limit: int, before_id: int = 0) -> tuple[list[AuditEvent], int]:
        """Newest first; the second value continues the listing (0: nothing older)."""
        reply = self.call(
            self._stub.ListAuditEvents, audit_pb2.ListAuditEventsRequest(limit=limit, before_id=before_id)
        )
        return [_event(e) for e in reply.events], reply.next_before_id


def _token(t: registry_pb2.Token) -> Token:
    return Token(
        name=t.name,
        role=registry_pb2.Role.Name(t.role).removeprefix(_ROLE_PREFIX).lower(),
        created_at=time_field(t, "created_at"),
        created_by=t.created_by,
        expires_at=time_field(t, "expires_at"),
        revoked_at=time_field(t, "revoked_at"),
        revoked_by=t.revoked_by,
        last_used_at=time_field(t, "last_used_at"),
    )


def _access_key(k: registry_pb2.AccessKeyInfo) -> AccessKeyInfo:
    return AccessKeyInfo(
        name=k.name,
        key_id=k.key_id,
        zone=k.zone,
        state=registry_pb2.AccessKeyState.Name(k.state).removeprefix(_ACCESS_KEY_STATE_PREFIX).lower(),
        created_at=time_field(k, "created_at"),
        created_by=k.created_by,
        expires_at=time_field(k, "expires_at"),
        revoked_at=time_field(k, "revoked_at"),
        revoked_by=k.revoked_by,
        replaced_by=k.replaced_by_key_id,
    )


def _enrollment_token(t: registry_pb2.EnrollmentTokenInfo) -> EnrollmentTokenInfo:
    return EnrollmentTokenInfo(
        name=t.name,
        token_id=t.token_id,
        zone=t.zone,
        state=registry_pb2.EnrollmentTokenState.Name(t.state).removeprefix(_ENROLLMENT_TOKEN_STATE_PREFIX).lower(),
        uses_used=t.uses_used,
        uses_allowed=t.uses_allowed,
        expires_at=time_field(t, "expires_at"),
        cidrs=list(t.cidrs),
        created_at=time_field(t, "created_at"),
        created_by=t.created_by,
        revoked_at=time_field(t, "revoked_at"),
        revoked_by=t.revoked_by,
    )


def _event(e: audit_pb2.AuditEvent) -> AuditEvent:
    return AuditEvent(
        at=time_field(e, "at"),
        service=e.service,
        method=e.method,
        principal=e.principal,
        role=e.role,
        peer=e.peer,
        target=e.target,
        outcome=e.outcome,
        detail=e.detail,
        id=e.id,
    )
