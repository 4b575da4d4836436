"""The admin-token RPCs of `RegistryService` (a mixin of `RegistryServicer`).

Kept apart from the collector RPCs: tokens are about who may call, not about collectors.
The secret leaves the registry once, in `CreateTokenResponse`.
"""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import errors, paging
from outpost.auth.principals import Role, current_principal
from outpost.registry.v1 import registry_pb2
from services.registry.domain.tokens import AdminToken
from services.registry.tokens import Tokens

ROLE_TO_PROTO = {
    Role.VIEWER: registry_pb2.ROLE_VIEWER,
    Role.OPERATOR: registry_pb2.ROLE_OPERATOR,
    Role.ADMIN: registry_pb2.ROLE_ADMIN,
}
ROLE_FROM_PROTO = {proto: role for role, proto in ROLE_TO_PROTO.items()}


class TokenRpcs:
    _tokens: Tokens

    async def CreateToken(
        self, request: registry_pb2.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateTokenResponse:
        role = ROLE_FROM_PROTO.get(request.role)
        if role is None:
            raise errors.InvalidArgument("role is required: viewer, operator or admin")
        token, secret = await self._tokens.create(
            request.name, role, expires_in_seconds=request.expires_in_seconds, actor=current_principal().name
        )
        return registry_pb2.CreateTokenResponse(token=_token(token), secret=secret)

    async def ListTokens(
        self, request: registry_pb2.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListTokensResponse:
        found, next_token = paging.page_of_sorted(
            await self._tokens.list_tokens(include_revoked=request.include_revoked),
            lambda t: (t.name,),
            (str,),
            kind="tokens",
            filters={"include_revoked": request.include_revoked},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return registry_pb2.ListTokensResponse(tokens=[_token(t) for t in found], next_page_token=next_token)

    async def RevokeToken(
        self, request: registry_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RevokeTokenResponse:
        token = await self._tokens.revoke(request.name, actor=current_principal().name)
        return registry_pb2.RevokeTokenResponse(token=_token(token))

    async def AuthenticateToken(
        self, request: registry_pb2.AuthenticateTokenRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.AuthenticateTokenResponse:
        principal = await self._tokens.authenticate(request.token_sha256)
        assert principal.role is not None
        return registry_pb2.AuthenticateTokenResponse(name=principal.name, role=ROLE_TO_PROTO[principal.role])


def _token(t: AdminToken) -> registry_pb2.Token:
    """The admin view of a token: never its secret, nor its digest."""
    message = registry_pb2.Token(
        name=t.name, role=ROLE_TO_PROTO[t.role], created_by=t.created_by, revoked_by=t.revoked_by
    )
    for field, value in (
        ("created_at", t.created_at),
        ("expires_at", t.expires_at),
        ("revoked_at", t.revoked_at),
        ("last_used_at", t.last_used_at),
    ):
        if value is not None:
            stamp = Timestamp()
            stamp.FromDatetime(value)
            getattr(message, field).CopyFrom(stamp)
    return message
