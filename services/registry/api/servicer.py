"""`outpost.registry.v1.RegistryService`: protobuf in, `Registry` calls, protobuf out.

No decisions are made here. Errors are raised as `outpost.errors.*` by the layers below
and become gRPC statuses in the shared interceptor. The one check done at this edge is
the handshake signature, because its transcript is defined over the wire message
(`outpost.session.handshake`); what a bad proof means is decided by the domain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from outpost import errors, paging
from outpost.agent.v1 import agent_pb2
from outpost.auth.principals import current_principal
from outpost.password_proof import PasswordParameters
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session import handshake
from services.registry.access_keys import AccessKeys
from services.registry.api.access_key_rpcs import AccessKeyRpcs
from services.registry.api.enrollment_token_rpcs import EnrollmentTokenRpcs
from services.registry.api.token_rpcs import TokenRpcs
from services.registry.credentials import Credentials
from services.registry.domain import authentication as auth
from services.registry.domain import passwords
from services.registry.domain.collectors import (
    Collector,
    CollectorEvent,
    CollectorState,
    EventKind,
    NameConflict,
    SessionReport,
    SpoolStatus,
)
from services.registry.domain.credentials import (
    Credential,
    CredentialInfo,
    CredentialType,
    Secret,
    SnmpV2c,
    SnmpV3,
    SshLogin,
)
from services.registry.domain.explain import Explanation, Finding
from services.registry.enrollment_tokens import EnrollmentTokens
from services.registry.key_rotation import KeyRotationRequest
from services.registry.registry import Registry
from services.registry.server_keys import ServerKeys
from services.registry.tokens import Tokens
from services.registry.watch import AccessKeyFeed

CS = agent_pb2.CollectorState
R = agent_pb2.DisconnectReason

STATE_TO_PROTO = {
    CollectorState.PENDING: CS.COLLECTOR_STATE_PENDING,
    CollectorState.ENABLED: CS.COLLECTOR_STATE_ENABLED,
    CollectorState.DISABLED: CS.COLLECTOR_STATE_DISABLED,
}
STATE_FROM_PROTO = {proto: state for state, proto in STATE_TO_PROTO.items()}
REFUSAL_TO_PROTO = {
    auth.Refusal.AUTHENTICATION_FAILED: R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
    auth.Refusal.BOUND_TO_OTHER_INSTANCE: R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE,
    auth.Refusal.NAME_CONFLICT: R.DISCONNECT_REASON_NAME_CONFLICT,
    auth.Refusal.PENDING_LIMIT: R.DISCONNECT_REASON_RATE_LIMITED,
    # The collector must be restarted with its registered name and zone: an operator's fix,
    # like a wrong password (the message names both values).
    auth.Refusal.IDENTITY_CHANGED: R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
    auth.Refusal.ENROLLMENT_REFUSED: R.DISCONNECT_REASON_ENROLLMENT_REFUSED,
}
DEFAULT_CREDENTIALS_PAGE = 500
MAX_CREDENTIALS_PAGE = 2000
MAX_OVERLAP_SECONDS = 10 * 366 * 86400
"""Clamped before it becomes a timedelta (whose range ends near 2.7e9 days); the domain refuses above a year."""
KIND_TO_PROTO = {
    EventKind.STATE_CHANGED: registry_pb2.EVENT_KIND_STATE_CHANGED,
    EventKind.REMOVED: registry_pb2.EVENT_KIND_REMOVED,
    EventKind.CREDENTIALS_CHANGED: registry_pb2.EVENT_KIND_CREDENTIALS_CHANGED,
    EventKind.BOOKMARK: registry_pb2.EVENT_KIND_BOOKMARK,
}

TYPE_TO_PROTO = {
    CredentialType.SNMP_V2C: registry_pb2.CREDENTIAL_TYPE_SNMP_V2C,
    CredentialType.SNMP_V3: registry_pb2.CREDENTIAL_TYPE_SNMP_V3,
    CredentialType.SSH: registry_pb2.CREDENTIAL_TYPE_SSH,
}


class RegistryServicer(TokenRpcs, AccessKeyRpcs, EnrollmentTokenRpcs, registry_pb2_grpc.RegistryServiceServicer):
    """Who asks is `current_principal()` (set by the auth interceptor); `actor` fields of
    requests are ignored, so the audit and `state_changed_by` name who really did it."""

    def __init__(
        self,
        registry: Registry,
        credentials: Credentials,
        tokens: Tokens,
        *,
        access_keys: AccessKeys,
        access_key_feed: AccessKeyFeed,
        server_keys: ServerKeys,
        enrollment_tokens: EnrollmentTokens,
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._tokens = tokens
        self._access_keys = access_keys
        self._access_key_feed = access_key_feed
        self._server_keys = server_keys
        self._enrollment_tokens = enrollment_tokens

    async def AuthenticateCollector(
        self, request: registry_pb2.AuthenticateCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.AuthenticateCollectorResponse:
        info = self._registry.info
        hello = request.hello
        attempt = auth.AuthAttempt(
            hello=auth.Hello(
                instance_uid=hello.instance_uid,
                name=hello.name,
                zone=hello.zone,
                version=hello.version,
                bound_server_instance=hello.bound_server_instance,
                public_key=hello.public_key,
                username=hello.username,
                password_verifier=hello.password_verifier,
                encryption_public_key=hello.encryption_public_key,
                spool=_spool(hello.spool) if hello.HasField("spool") else None,
                sealing_algorithms=tuple(hello.sealing_algorithms),
                enrollment_token=hello.enrollment_token,
            ),
            # The proof covers the sealed session's handshake hash the gateway reports (channel
            # binding, ADR 0019): a proof made in another session does not verify here.
            proof_valid=handshake.verify(
                hello, request.nonce, info.server_instance, request.signature, request.handshake_hash
            ),
            remote_address=request.remote_address,
            gateway_id=request.gateway_id,
            session_id=request.session_id,
            transport=request.transport,
            nonce=request.nonce,
            nonce_issued_at=_nonce_issued_at(request.nonce),
            access_key_id=request.access_key_id,
            transcript=handshake.transcript(hello, request.nonce, info.server_instance, request.handshake_hash),
            password_proofs=tuple(
                (_parameters(p), proof)
                for p, proof in zip(request.password_parameters, request.password_proofs, strict=False)
            ),
        )
        outcome = await self._registry.authenticate(attempt)
        response = registry_pb2.AuthenticateCollectorResponse(
            decision=registry_pb2.DECISION_ACCEPTED if outcome.accepted else registry_pb2.DECISION_REFUSED,
            fingerprint=outcome.fingerprint,
            server_instance=info.server_instance,
            heartbeat_interval_seconds=info.heartbeat_interval_seconds,
            revision=outcome.revision,
            state_reason=outcome.state_reason,
            state_changed_by=outcome.state_changed_by,
        )
        if outcome.accepted:
            response.name = outcome.name
            response.zone = outcome.zone
        if outcome.state is not None:
            response.state = STATE_TO_PROTO[outcome.state]
        if outcome.refused is not None:
            response.refusal = REFUSAL_TO_PROTO[outcome.refused.refusal]
            response.message = outcome.refused.message
            response.retry_after_seconds = outcome.refused.retry_after_seconds
        return response

    async def GetPasswordParameters(
        self, request: registry_pb2.GetPasswordParametersRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetPasswordParametersResponse:
        found = await self._registry.password_parameters(request.instance_uid, request.public_key)
        return registry_pb2.GetPasswordParametersResponse(parameters=[_password_parameters(p) for p in found])

    async def ListCollectorCredentials(
        self, request: registry_pb2.ListCollectorCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListCollectorCredentialsResponse:
        """A page of registered collectors' verification material for a gateway's cache (ADR 0034)."""
        if len(request.instance_uids) > MAX_CREDENTIALS_PAGE:
            raise errors.InvalidArgument(f"at most {MAX_CREDENTIALS_PAGE} instance_uids per call")
        limit = paging.page_size(request.page_size, default=DEFAULT_CREDENTIALS_PAGE, maximum=MAX_CREDENTIALS_PAGE)
        filters = {"uids": sorted(request.instance_uids)}
        after = ""
        if request.page_token:
            (position,) = paging.decode_token(request.page_token, "collector-credentials", filters, (str,))
            after = str(position)
        revision, found = await self._registry.collector_credentials(
            after_uid=after, limit=limit, instance_uids=list(request.instance_uids)
        )
        next_token = ""
        if len(found) == limit:
            next_token = paging.encode_token("collector-credentials", filters, (found[-1][0].instance_uid,))
        return registry_pb2.ListCollectorCredentialsResponse(
            collectors=[_collector_credentials(c, p) for c, p in found], next_page_token=next_token, revision=revision
        )

    async def SetCollectorPassword(
        self, request: registry_pb2.SetCollectorPasswordRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.SetCollectorPasswordResponse:
        collector = await self._registry.set_password(
            request.name,
            request.password,
            timedelta(seconds=min(request.overlap_seconds, MAX_OVERLAP_SECONDS)),
            actor=current_principal().name,
        )
        return registry_pb2.SetCollectorPasswordResponse(collector=_collector(collector))

    async def RotateCollectorKey(
        self, request: registry_pb2.RotateCollectorKeyRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RotateCollectorKeyResponse:
        decision = await self._registry.rotate_key(
            KeyRotationRequest(
                instance_uid=request.instance_uid,
                old_public_key=request.old_public_key,
                rotation=request.rotation,
                handshake_hash=request.handshake_hash,
                session_id=request.session_id,
                gateway_id=request.gateway_id,
                remote_address=request.remote_address,
            )
        )
        return registry_pb2.RotateCollectorKeyResponse(
            result=agent_pb2.KeyRotationResult(
                accepted=decision.accepted, fingerprint=decision.fingerprint, reason=decision.reason
            )
        )

    async def WatchCollectors(
        self, request: registry_pb2.WatchCollectorsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[registry_pb2.CollectorEvent]:
        async for event in self._registry.watch(request.since_revision):
            yield _event(event)

    async def ReportSessions(
        self, request: registry_pb2.ReportSessionsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ReportSessionsResponse:
        reports = [_session_report(s) for s in request.sessions]
        await self._registry.report_sessions(request.gateway_id, reports, complete=request.complete)
        return registry_pb2.ReportSessionsResponse()

    async def GetServerInfo(
        self, request: registry_pb2.GetServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetServerInfoResponse:
        info = self._registry.info
        current, announced = await self._server_keys.public_keys()
        reply = registry_pb2.GetServerInfoResponse(
            server_instance=info.server_instance,
            version=info.version,
            started_at=_timestamp(info.started_at),
            database=info.database,
            heartbeat_interval_seconds=info.heartbeat_interval_seconds,
            server_key_fingerprint=handshake.fingerprint(current.public_key),
        )
        activates_at = _timestamp(announced.activated_at) if announced is not None else None
        if announced is not None and activates_at is not None:
            reply.next_server_key_fingerprint = handshake.fingerprint(announced.public_key)
            reply.next_server_key_activates_at.CopyFrom(activates_at)
        return reply

    async def ListCollectors(
        self, request: registry_pb2.ListCollectorsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListCollectorsResponse:
        state = STATE_FROM_PROTO.get(request.state)  # UNSPECIFIED (or unknown): all
        found, next_token = await self._registry.list_collectors(
            state, zone=request.zone.strip() or None, page_size=request.page_size, page_token=request.page_token
        )
        return registry_pb2.ListCollectorsResponse(
            collectors=[_collector(c) for c in found], next_page_token=next_token
        )

    async def GetCollector(
        self, request: registry_pb2.GetCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.GetCollectorResponse:
        collector = await self._registry.get_collector(request.name)
        return registry_pb2.GetCollectorResponse(collector=_collector(collector))

    async def ExplainCollector(
        self, request: registry_pb2.ExplainCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ExplainCollectorResponse:
        return _explanation(await self._registry.explain(request.name))

    async def RegisterCollector(
        self, request: registry_pb2.RegisterCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RegisterCollectorResponse:
        collector = await self._registry.register(
            request.name,
            username=request.username,
            password=request.password,
            enable=request.enable,
            actor=current_principal().name,
            fingerprint=request.fingerprint,
        )
        return registry_pb2.RegisterCollectorResponse(collector=_collector(collector))

    async def EnableCollector(
        self, request: registry_pb2.EnableCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.EnableCollectorResponse:
        collector = await self._registry.set_enabled(
            request.name, enabled=True, actor=current_principal().name, reason=request.reason
        )
        return registry_pb2.EnableCollectorResponse(collector=_collector(collector))

    async def DisableCollector(
        self, request: registry_pb2.DisableCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.DisableCollectorResponse:
        collector = await self._registry.set_enabled(
            request.name, enabled=False, actor=current_principal().name, reason=request.reason
        )
        return registry_pb2.DisableCollectorResponse(collector=_collector(collector))

    async def RemoveCollector(
        self, request: registry_pb2.RemoveCollectorRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.RemoveCollectorResponse:
        await self._registry.remove(request.name, actor=current_principal().name, reason=request.reason)
        return registry_pb2.RemoveCollectorResponse()

    async def ListNameConflicts(
        self, request: registry_pb2.ListNameConflictsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListNameConflictsResponse:
        found, next_token = paging.page_of_sorted(
            await self._registry.list_name_conflicts(),
            lambda c: (c.name, c.first_seen, c.instance_uid),
            (str, datetime, str),
            kind="name_conflicts",
            filters={},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return registry_pb2.ListNameConflictsResponse(
            conflicts=[_conflict(c) for c in found], next_page_token=next_token
        )

    # --- discovery credentials -------------------------------------------------------------
    async def CreateCredential(
        self, request: registry_pb2.CreateCredentialRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.CreateCredentialResponse:
        info = await self._credentials.create(_credential(request.credential), actor=current_principal().name)
        return registry_pb2.CreateCredentialResponse(credential=_credential_info(info))

    async def ListCredentials(
        self, request: registry_pb2.ListCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.ListCredentialsResponse:
        found, next_token = paging.page_of_sorted(
            await self._credentials.list_credentials(),
            lambda c: (c.name,),
            (str,),
            kind="credentials",
            filters={},
            requested_size=request.page_size,
            token=request.page_token,
        )
        return registry_pb2.ListCredentialsResponse(
            credentials=[_credential_info(c) for c in found], next_page_token=next_token
        )

    async def DeleteCredential(
        self, request: registry_pb2.DeleteCredentialRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.DeleteCredentialResponse:
        await self._credentials.delete(request.name, actor=current_principal().name)
        return registry_pb2.DeleteCredentialResponse()

    async def SealCredentials(
        self, request: registry_pb2.SealCredentialsRequest, context: grpc.aio.ServicerContext
    ) -> registry_pb2.SealCredentialsResponse:
        sealed = await self._credentials.seal(request.collector_instance_uid, list(request.names), request.context)
        return registry_pb2.SealCredentialsResponse(sealed=sealed)


def _credential(message: agent_pb2.Credential) -> Credential:
    """The wire credential as a domain value; which kind is set is the one wire-shape check."""
    kind = message.WhichOneof("kind")
    secret: Secret
    if kind == "snmp_v2c":
        secret = SnmpV2c(community=message.snmp_v2c.community)
    elif kind == "snmp_v3":
        v3 = message.snmp_v3
        secret = SnmpV3(
            username=v3.username,
            auth_protocol=v3.auth_protocol,
            auth_key=v3.auth_key,
            priv_protocol=v3.priv_protocol,
            priv_key=v3.priv_key,
        )
    elif kind == "ssh":
        ssh = message.ssh
        secret = SshLogin(
            username=ssh.username,
            password=ssh.password,
            private_key_pem=ssh.private_key_pem,
            passphrase=ssh.passphrase,
        )
    else:
        raise errors.InvalidArgument("credential has no secret: set one of snmp_v2c, snmp_v3 or ssh")
    return Credential(name=message.name, secret=secret)


def _credential_info(c: CredentialInfo) -> registry_pb2.CredentialInfo:
    """The admin view of a credential: never the secret."""
    return registry_pb2.CredentialInfo(
        name=c.name,
        type=TYPE_TO_PROTO[c.type],
        username=c.username,
        created_at=_timestamp(c.created_at),
        created_by=c.created_by,
    )


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _session_report(s: registry_pb2.SessionReport) -> SessionReport:
    """A gateway's report; proto3 int64 has no presence, so the skew counts only with a time.

    A report without `last_heard_at` comes from a gateway that predates ADR 0010 and
    measures no skew: its 0 must not overwrite a value a newer gateway measured.
    """
    heard = _datetime(s.last_heard_at) if s.HasField("last_heard_at") else None
    return SessionReport(
        instance_uid=s.instance_uid,
        session_id=s.session_id,
        connected=s.connected,
        remote_address=s.remote_address,
        transport=s.transport,
        last_error=s.last_error,
        last_heard_at=heard,
        clock_skew_ms=s.clock_skew_ms if heard is not None else None,
        spool=_spool(s.spool) if s.HasField("spool") else None,
        check_in_seconds=s.check_in_seconds,
    )


def _datetime(stamp: Timestamp) -> datetime | None:
    """A wire time as aware UTC; the zero epoch means unset."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def _spool(s: agent_pb2.SpoolStatus) -> SpoolStatus:
    return SpoolStatus(
        batches=s.batches,
        bytes=s.bytes,
        max_bytes=s.max_bytes,
        max_age_seconds=s.max_age_seconds,
        oldest_at=datetime.fromtimestamp(s.oldest_unix_ms / 1000, UTC) if s.oldest_unix_ms > 0 else None,
        dropped_full=s.dropped_full,
        dropped_expired=s.dropped_expired,
        dropped_corrupt=s.dropped_corrupt,
        dropped_devices=s.dropped_devices,
    )


def _spool_message(s: SpoolStatus) -> agent_pb2.SpoolStatus:
    return agent_pb2.SpoolStatus(
        batches=s.batches,
        bytes=s.bytes,
        max_bytes=s.max_bytes,
        max_age_seconds=s.max_age_seconds,
        oldest_unix_ms=0 if s.oldest_at is None else int(s.oldest_at.timestamp() * 1000),
        dropped_full=s.dropped_full,
        dropped_expired=s.dropped_expired,
        dropped_corrupt=s.dropped_corrupt,
        dropped_devices=s.dropped_devices,
    )


def _explanation(e: Explanation) -> registry_pb2.ExplainCollectorResponse:
    return registry_pb2.ExplainCollectorResponse(
        name=e.name,
        live=e.live,
        summary=e.summary,
        findings=[_finding(f) for f in e.findings],
        collector=None if e.collector is None else _collector(e.collector),
    )


def _finding(f: Finding) -> registry_pb2.Finding:
    return registry_pb2.Finding(
        code=f.code.value,
        severity=f.severity.value,
        message=f.message,
        at=_timestamp(f.at),
        advice=f.advice,
    )


def _collector(c: Collector) -> registry_pb2.Collector:
    """The admin view: never the verifier, nor the raw key (the fingerprint names it)."""
    return registry_pb2.Collector(
        instance_uid=c.instance_uid,
        name=c.name,
        zone=c.zone,
        version=c.version,
        state=STATE_TO_PROTO[c.state],
        fingerprint=c.fingerprint,
        remote_address=c.remote_address,
        first_seen=_timestamp(c.first_seen),
        last_seen=_timestamp(c.last_seen),
        connected=c.connected,
        gateway_id=c.gateway_id,
        transport=c.transport,
        registered_at=_timestamp(c.registered_at),
        state_reason=c.state_reason,
        state_changed_by=c.state_changed_by,
        username=c.username,
        revision=c.revision,
        online=c.online,
        last_error=c.last_error,
        last_error_at=_timestamp(c.last_error_at),
        clock_skew_ms=c.clock_skew_ms or 0,
        spool=None if c.spool is None else _spool_message(c.spool),
        check_in_seconds=c.check_in_seconds,
        enrolled_by=c.enrolled_by,
        key_rotated_at=_timestamp(c.key_rotated_at),
        password_on_record=c.password_on_record,
        password_rotated_at=_timestamp(c.password_rotated_at),
        previous_password_accepted_until=_timestamp(c.previous_password_until),
        password_last_proved=c.password_last_proved,
    )


def _password_parameters(p: PasswordParameters) -> agent_pb2.PasswordParameters:
    return agent_pb2.PasswordParameters(
        salt=p.salt,
        memory_kib=p.memory_kib,
        time_cost=p.time_cost,
        parallelism=p.parallelism,
        public_key=p.public_key,
    )


def _parameters(p: agent_pb2.PasswordParameters) -> PasswordParameters:
    return PasswordParameters(p.salt, p.memory_kib, p.time_cost, p.parallelism, p.public_key)


def _nonce_issued_at(nonce: bytes) -> datetime:
    """The issue time a challenge nonce carries; the epoch (refused as stale) when unreadable."""
    try:
        return datetime.fromtimestamp(handshake.nonce_issued_at_ms(nonce) / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return datetime.fromtimestamp(0, UTC)


def _collector_credentials(
    c: Collector, credentials: list[passwords.PasswordCredential]
) -> registry_pb2.CollectorCredentials:
    return registry_pb2.CollectorCredentials(
        instance_uid=c.instance_uid,
        name=c.name,
        zone=c.zone,
        state=STATE_TO_PROTO[c.state],
        state_reason=c.state_reason,
        revision=c.revision,
        public_key=c.public_key,
        encryption_public_key=c.encryption_public_key,
        enrolled=bool(c.enrolled_by),
        version=c.version,
        sealing_algorithms=list(c.sealing_algorithms),
        access_key_id=c.access_key_id,
        password_last_proved=c.password_last_proved,
        passwords=[
            registry_pb2.StoredPassword(
                slot=p.slot.value,
                parameters=_password_parameters(p.parameters),
                stored_key=p.stored_key,
                accepted_until=_timestamp(p.accepted_until) if p.accepted_until is not None else None,
            )
            for p in credentials
        ],
    )


def _event(e: CollectorEvent) -> registry_pb2.CollectorEvent:
    event = registry_pb2.CollectorEvent(
        revision=e.revision,
        kind=KIND_TO_PROTO[e.kind],
        instance_uid=e.instance_uid,
        name=e.name,
        zone=e.zone,
        reason=e.reason,
        changed_by=e.changed_by,
    )
    if e.state is not None:
        event.state = STATE_TO_PROTO[e.state]
    return event


def _conflict(c: NameConflict) -> registry_pb2.NameConflict:
    return registry_pb2.NameConflict(
        name=c.name,
        instance_uid=c.instance_uid,
        fingerprint=c.fingerprint,
        remote_address=c.remote_address,
        first_seen=_timestamp(c.first_seen),
        last_seen=_timestamp(c.last_seen),
        attempts=c.attempts,
        held_by_fingerprint=c.held_by_fingerprint,
    )
