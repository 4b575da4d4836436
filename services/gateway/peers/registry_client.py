"""The gateway's client of the registry: handshake decisions, the watches, session reports, keys.

Converts protobuf to the session core's plain values at this edge, and every call has a
deadline: a slow registry delays a handshake, it never hangs a session forever. The
handshake, key and rotation calls turn a failed call into the project's own errors
(`outpost.grpc_errors.error_from_rpc`), so their callers never branch on gRPC codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import errors
from outpost.agent.v1 import agent_pb2
from outpost.grpc_errors import error_from_rpc, peer_error
from outpost.password_proof import PasswordParameters
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session.server import STATE_BY_PROTO, AuthDecision, ServerState
from services.gateway.peers.collector_cache import CachedCollector, CredentialsChanged, StoredPassword
from services.gateway.sessions.collector_status import spool_to_proto
from services.gateway.sessions.hub import ChangeKind, CollectorChange, SpoolStatus

AUTH_TIMEOUT_SECONDS = 5.0
LIST_TIMEOUT_SECONDS = 30.0
REPORT_TIMEOUT_SECONDS = 10.0
CREDENTIALS_PAGE = 1000


@dataclass(frozen=True)
class ServerInfo:
    server_instance: str
    heartbeat_interval: float


@dataclass(frozen=True)
class Bookmark:
    revision: int


@dataclass(frozen=True)
class AccessKeyChange:
    """An access key's state as of `revision` (WatchAccessKeys); `psk` is empty once revoked."""

    revision: int
    key_id: str
    name: str
    zone: str | None
    psk: bytes
    expires_at: datetime | None
    revoked: bool
    replaced_by: str = ""
    """The key id that replaced this one (`access-keys rotate`); empty when not rotated."""

    def __repr__(self) -> str:  # never print the PSK
        return f"AccessKeyChange(revision={self.revision}, key_id={self.key_id!r}, revoked={self.revoked})"


@dataclass(frozen=True)
class AccessKeyBookmark:
    revision: int


@dataclass(frozen=True)
class ServerKeyPair:
    """One of the server's X25519 static keys, as the registry hands it to gateways."""

    private_key: bytes
    public_key: bytes
    current: bool
    """The registry's word when it answered; the gateway re-judges by `activated_at` (ADR 0024)."""
    activated_at: datetime | None = None
    """Current: since when; announced next: when it becomes current."""
    retires_at: datetime | None = None
    """A replaced key: until when it is still accepted (None: no end set)."""

    def __repr__(self) -> str:
        return f"ServerKeyPair(current={self.current}, activated_at={self.activated_at})"


@dataclass(frozen=True)
class SessionReport:
    """One session as the registry is told about it (ADR 0010, "Status from heartbeats").

    `last_heard_at` is wall-clock seconds of the last frame (0: not sent); `clock_skew_ms`
    the collector's clock minus the gateway's; `spool` its last reported spool, if any.
    """

    instance_uid: str
    session_id: str
    connected: bool
    remote_address: str = ""
    transport: str = ""
    last_error: str = ""
    last_heard_at: float = 0.0
    clock_skew_ms: int = 0
    spool: SpoolStatus | None = None
    check_in_seconds: int = 0
    """A polling session's wait between polls; 0 for a streaming one."""


class RegistryClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)

    async def server_info(self) -> ServerInfo:
        try:
            info = await self._stub.GetServerInfo(registry_pb2.GetServerInfoRequest(), timeout=AUTH_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return ServerInfo(info.server_instance, float(info.heartbeat_interval_seconds or 30))

    async def authenticate(
        self,
        *,
        hello: agent_pb2.Hello,
        nonce: bytes,
        signature: bytes,
        remote_address: str,
        gateway_id: str,
        session_id: str,
        transport: str,
        access_key_id: str = "",
        handshake_hash: bytes = b"",
        password_parameters: Sequence[agent_pb2.PasswordParameters] = (),
        password_proofs: Sequence[bytes] = (),
    ) -> AuthDecision:
        """The registry's decision on a handshake, as the session core's plain values.

        A failed call raises the project's own error (`outpost.errors`), never a gRPC one.
        """
        try:
            response = await self._stub.AuthenticateCollector(
                registry_pb2.AuthenticateCollectorRequest(
                    hello=hello,
                    nonce=nonce,
                    signature=signature,
                    remote_address=remote_address,
                    gateway_id=gateway_id,
                    session_id=session_id,
                    transport=transport,
                    access_key_id=access_key_id,
                    handshake_hash=handshake_hash,
                    password_parameters=password_parameters,
                    password_proofs=password_proofs,
                ),
                timeout=AUTH_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        if response.decision != registry_pb2.DECISION_ACCEPTED:
            return AuthDecision(
                accepted=False,
                refusal=response.refusal or agent_pb2.DISCONNECT_REASON_AUTHENTICATION_FAILED,
                message=response.message or "refused by the registry",
                retry_after=response.retry_after_seconds,
            )
        return AuthDecision(
            accepted=True,
            state=STATE_BY_PROTO.get(response.state, ServerState.PENDING),
            fingerprint=response.fingerprint,
            heartbeat_interval=float(response.heartbeat_interval_seconds or 30),
            revision=response.revision,
            reason=response.state_reason,
            name=response.name,
            zone=response.zone,
        )

    async def password_parameters(self, *, instance_uid: str, public_key: bytes) -> list[agent_pb2.PasswordParameters]:
        """The service-password parameters a Challenge offers this collector (ADR 0025).

        A failed call raises the project's own error (`outpost.errors`), never a gRPC one.
        """
        try:
            response = await self._stub.GetPasswordParameters(
                registry_pb2.GetPasswordParametersRequest(instance_uid=instance_uid, public_key=public_key),
                timeout=AUTH_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return list(response.parameters)

    async def collector_credentials(self, instance_uids: Sequence[str] = ()) -> list[CachedCollector]:
        """Registered collectors' verification material (ADR 0034): the ones named, or all, every page.

        A failed call raises the project's own error (`outpost.errors`), never a gRPC one.
        """
        found: list[CachedCollector] = []
        token = ""
        try:
            async with asyncio.timeout(LIST_TIMEOUT_SECONDS):
                while True:
                    response = await self._stub.ListCollectorCredentials(
                        registry_pb2.ListCollectorCredentialsRequest(
                            page_size=CREDENTIALS_PAGE, page_token=token, instance_uids=instance_uids
                        ),
                        timeout=AUTH_TIMEOUT_SECONDS,
                    )
                    found += [_cached_collector(c) for c in response.collectors]
                    token = response.next_page_token
                    if not token:
                        return found
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc

    async def watch(self, since_revision: int) -> AsyncIterator[CollectorChange | CredentialsChanged | Bookmark]:
        """Changes after `since_revision`; ends (or raises `peer_error`) when the stream breaks."""
        call = self._stub.WatchCollectors(registry_pb2.WatchCollectorsRequest(since_revision=since_revision))
        try:
            async for event in call:
                if event.kind == registry_pb2.EVENT_KIND_BOOKMARK:
                    yield Bookmark(event.revision)
                elif event.kind == registry_pb2.EVENT_KIND_CREDENTIALS_CHANGED:
                    yield CredentialsChanged(event.revision, event.instance_uid)
                elif event.kind in (registry_pb2.EVENT_KIND_STATE_CHANGED, registry_pb2.EVENT_KIND_REMOVED):
                    yield CollectorChange(
                        revision=event.revision,
                        kind=ChangeKind.REMOVED
                        if event.kind == registry_pb2.EVENT_KIND_REMOVED
                        else ChangeKind.STATE_CHANGED,
                        instance_uid=event.instance_uid,
                        name=event.name,
                        state=STATE_BY_PROTO.get(event.state, ServerState.PENDING),
                        reason=event.reason,
                        changed_by=event.changed_by,
                        zone=event.zone,
                    )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        finally:
            call.cancel()

    async def watch_access_keys(self, since_revision: int) -> AsyncIterator[AccessKeyChange | AccessKeyBookmark]:
        """Access-key changes after `since_revision` (0: every key's current state), with bookmarks.

        Ends when the stream ends; a failed call raises the project's error (Unavailable, ...).
        """
        call = self._stub.WatchAccessKeys(registry_pb2.WatchAccessKeysRequest(since_revision=since_revision))
        try:
            async for event in call:
                if event.kind == registry_pb2.ACCESS_KEY_EVENT_KIND_BOOKMARK:
                    yield AccessKeyBookmark(event.revision)
                elif event.kind == registry_pb2.ACCESS_KEY_EVENT_KIND_CHANGED:
                    yield AccessKeyChange(
                        revision=event.revision,
                        key_id=event.key_id,
                        name=event.name,
                        zone=event.zone or None,
                        psk=event.psk,
                        expires_at=event.expires_at.ToDatetime(tzinfo=UTC) if event.HasField("expires_at") else None,
                        revoked=event.revoked,
                        replaced_by=event.replaced_by_key_id,
                    )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        finally:
            call.cancel()

    async def access_keys(self) -> tuple[int, list[AccessKeyChange]]:
        """Every access key's current state and the revision it is current at (the watch's list)."""
        listed: list[AccessKeyChange] = []
        async with asyncio.timeout(LIST_TIMEOUT_SECONDS):
            async for item in self.watch_access_keys(0):
                if isinstance(item, AccessKeyBookmark):
                    return item.revision, listed
                listed.append(item)
        raise errors.Unavailable("the registry ended the access-key list before it was complete")

    async def server_keys(self) -> list[ServerKeyPair]:
        """The server's static keys, current first."""
        try:
            response = await self._stub.GetServerKeys(registry_pb2.GetServerKeysRequest(), timeout=AUTH_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return [
            ServerKeyPair(
                private_key=key.private_key,
                public_key=key.public_key,
                current=key.state == registry_pb2.SERVER_KEY_STATE_CURRENT,
                activated_at=key.activated_at.ToDatetime(UTC) if key.HasField("activated_at") else None,
                retires_at=key.retires_at.ToDatetime(UTC) if key.HasField("retires_at") else None,
            )
            for key in response.keys
        ]

    async def seal_credentials(self, *, instance_uid: str, names: list[str], context: str) -> agent_pb2.SealedSecret:
        """The named credentials sealed to one collector; the gateway never sees them in clear."""
        try:
            response = await self._stub.SealCredentials(
                registry_pb2.SealCredentialsRequest(collector_instance_uid=instance_uid, names=names, context=context),
                timeout=AUTH_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc
        return response.sealed

    async def rotate_collector_key(
        self,
        *,
        instance_uid: str,
        old_public_key: bytes,
        rotation: agent_pb2.KeyRotation,
        handshake_hash: bytes,
        session_id: str,
        gateway_id: str,
        remote_address: str,
    ) -> agent_pb2.KeyRotationResult:
        """The registry's decision on a collector's KeyRotation (ADR 0024); it applies it when accepted.

        A failed call raises the project's own error (`outpost.errors`), never a gRPC one.
        """
        try:
            response = await self._stub.RotateCollectorKey(
                registry_pb2.RotateCollectorKeyRequest(
                    instance_uid=instance_uid,
                    old_public_key=old_public_key,
                    rotation=rotation,
                    handshake_hash=handshake_hash,
                    session_id=session_id,
                    gateway_id=gateway_id,
                    remote_address=remote_address,
                ),
                timeout=AUTH_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return response.result

    async def report_sessions(self, gateway_id: str, reports: Sequence[SessionReport], *, complete: bool) -> None:
        try:
            await self._stub.ReportSessions(
                registry_pb2.ReportSessionsRequest(
                    gateway_id=gateway_id,
                    complete=complete,
                    sessions=[_report_to_proto(r) for r in reports],
                ),
                timeout=REPORT_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc) from exc


def _cached_collector(c: registry_pb2.CollectorCredentials) -> CachedCollector:
    return CachedCollector(
        instance_uid=c.instance_uid,
        name=c.name,
        zone=c.zone,
        state=STATE_BY_PROTO.get(c.state, ServerState.PENDING),
        state_reason=c.state_reason,
        revision=c.revision,
        public_key=c.public_key,
        encryption_public_key=c.encryption_public_key,
        enrolled=c.enrolled,
        passwords=tuple(
            StoredPassword(
                slot=p.slot,
                parameters=PasswordParameters(
                    p.parameters.salt,
                    p.parameters.memory_kib,
                    p.parameters.time_cost,
                    p.parameters.parallelism,
                    p.parameters.public_key,
                ),
                stored_key=p.stored_key,
                accepted_until=p.accepted_until.ToDatetime(tzinfo=UTC) if p.HasField("accepted_until") else None,
            )
            for p in c.passwords
        ),
        version=c.version,
        sealing_algorithms=tuple(c.sealing_algorithms),
        access_key_id=c.access_key_id,
        password_last_proved=c.password_last_proved,
    )


def _report_to_proto(report: SessionReport) -> registry_pb2.SessionReport:
    message = registry_pb2.SessionReport(
        instance_uid=report.instance_uid,
        session_id=report.session_id,
        connected=report.connected,
        remote_address=report.remote_address,
        transport=report.transport,
        last_error=report.last_error,
        clock_skew_ms=report.clock_skew_ms,
        check_in_seconds=report.check_in_seconds,
    )
    if report.last_heard_at:
        heard = Timestamp()
        heard.FromMilliseconds(round(report.last_heard_at * 1000))
        message.last_heard_at.CopyFrom(heard)
    if report.spool is not None:
        message.spool.CopyFrom(spool_to_proto(report.spool))
    return message
