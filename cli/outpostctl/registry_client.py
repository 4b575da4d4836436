"""The registry's admin calls, as plain records: collectors, explanations, name conflicts,
server info, discovery credentials.

Protobuf stays in this module; commands and renderers see frozen dataclasses whose
timestamps are timezone-aware UTC datetimes, or None when the server never set them.
Credential secrets go one way only: `create_credential` sends them, nothing returns them,
and their records keep them out of `repr` so a traceback or debug print cannot show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpostctl.endpoints import Connection, Endpoints, time_field
from outpostctl.listing import every_row

_STATE_PREFIX = "COLLECTOR_STATE_"
_CREDENTIAL_TYPE_PREFIX = "CREDENTIAL_TYPE_"


@dataclass(frozen=True)
class SpoolStatus:
    """The collector's durable result spool at its last report; drop counters never go down."""

    batches: int
    bytes: int
    max_bytes: int
    max_age_seconds: int
    oldest: datetime | None
    dropped_full: int
    dropped_expired: int
    dropped_corrupt: int
    dropped_devices: int


@dataclass(frozen=True)
class Collector:
    """One collector as the registry knows it (field order is the JSON order).

    `online` is the registry's verdict (connected and heard from within two heartbeat
    intervals); `connected` is only what a gateway last reported.
    """

    name: str
    zone: str
    state: str
    online: bool
    connected: bool
    fingerprint: str
    last_seen: datetime | None
    instance_uid: str
    version: str
    remote_address: str
    first_seen: datetime | None
    registered_at: datetime | None
    transport: str
    gateway_id: str
    state_reason: str
    state_changed_by: str
    username: str
    last_error: str
    last_error_at: datetime | None
    clock_skew_ms: int
    spool: SpoolStatus | None
    check_in_seconds: int = 0
    """A polling collector's wait between check-ins; 0 for a streaming session."""
    enrolled_by: str = ""
    """The enrollment token that registered it ("enrollment-token:<name>"); "" when an admin did."""
    key_rotated_at: datetime | None = None
    """When the collector last replaced its identity key over its session (ADR 0024); None: never."""
    password_on_record: bool = False
    """Whether a service-password credential is on record (ADR 0025; `collectors show` only)."""
    password_rotated_at: datetime | None = None
    """When set-password last replaced its service password; None: never."""
    previous_password_accepted_until: datetime | None = None
    """Until when the previous password is still accepted; None: none is."""
    password_last_proved: str = ""
    """Which password its last accepted handshake proved: "current", "previous", "" (none since the last change)."""


@dataclass(frozen=True)
class Finding:
    """One piece of evidence from `collectors explain`; `at` is None for a current fact."""

    code: str
    severity: str  # "ok", "info", "warning" or "error"
    message: str
    at: datetime | None
    advice: str


@dataclass(frozen=True)
class Explanation:
    """Why a collector is or is not live; `collector` is None for a name never seen."""

    name: str
    live: bool
    summary: str
    findings: list[Finding]
    collector: Collector | None


@dataclass(frozen=True)
class NameConflict:
    """A refused claim: a second key pair announced a name another collector holds."""

    name: str
    instance_uid: str
    fingerprint: str
    held_by_fingerprint: str
    remote_address: str
    attempts: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class ServerInfo:
    server_instance: str
    version: str
    started_at: datetime | None
    database: str
    heartbeat_interval_seconds: int
    server_key_fingerprint: str = ""
    """The server's Noise static key, as collectors pin it ("SHA256:...")."""
    next_server_key_fingerprint: str = ""
    """The key announced by `server rotate-key`, until it becomes current."""
    next_server_key_activates_at: datetime | None = None


@dataclass(frozen=True)
class ServerKeyRotation:
    """What `server rotate-key` announced."""

    next_fingerprint: str
    activates_at: datetime | None
    current_fingerprint: str
    current_retires_at: datetime | None


@dataclass(frozen=True)
class CredentialInfo:
    """A discovery credential as admins see it: never the secret."""

    name: str
    type: str  # "snmp-v2c", "snmp-v3" or "ssh"
    username: str
    created_at: datetime | None
    created_by: str


@dataclass(frozen=True)
class SnmpV2cSecret:
    community: str = field(repr=False)


@dataclass(frozen=True)
class SnmpV3Secret:
    """User-based security; empty protocols mean no authentication / no privacy."""

    username: str
    auth_protocol: str = ""
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = ""
    priv_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class SshSecret:
    """A password, or a private key (PEM or OpenSSH format) with its optional passphrase."""

    username: str
    password: str = field(default="", repr=False)
    private_key_pem: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)


Secret = SnmpV2cSecret | SnmpV3Secret | SshSecret


class RegistryClient(Connection):
    service = "registry"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.registry, endpoints)
        self._stub = registry_pb2_grpc.RegistryServiceStub(self.channel)

    def get_server_info(self) -> ServerInfo:
        reply = self.call(self._stub.GetServerInfo, registry_pb2.GetServerInfoRequest())
        return ServerInfo(
            server_instance=reply.server_instance,
            version=reply.version,
            started_at=time_field(reply, "started_at"),
            database=reply.database,
            heartbeat_interval_seconds=reply.heartbeat_interval_seconds,
            server_key_fingerprint=reply.server_key_fingerprint,
            next_server_key_fingerprint=reply.next_server_key_fingerprint,
            next_server_key_activates_at=time_field(reply, "next_server_key_activates_at"),
        )

    def rotate_server_key(self, *, activate_in_seconds: int, retire_after_seconds: int) -> ServerKeyRotation:
        request = registry_pb2.RotateServerKeyRequest(
            activate_in_seconds=activate_in_seconds, retire_after_seconds=retire_after_seconds
        )
        reply = self.call(self._stub.RotateServerKey, request)
        return ServerKeyRotation(
            next_fingerprint=reply.next_fingerprint,
            activates_at=time_field(reply, "activates_at"),
            current_fingerprint=reply.current_fingerprint,
            current_retires_at=time_field(reply, "current_retires_at"),
        )

    def list_collectors_page(
        self, state: str | None = None, zone: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Collector], str]:
        """One page of collectors by name and the next page's token ("" at the end)."""
        # Protobuf takes an enum by its label; None leaves it unspecified, meaning "all".
        request = registry_pb2.ListCollectorsRequest(
            state=_STATE_PREFIX + state.upper() if state else None,
            zone=zone,
            page_size=page_size,
            page_token=page_token,
        )
        reply = self.call(self._stub.ListCollectors, request)
        return [_collector(c) for c in reply.collectors], reply.next_page_token

    def list_collectors(self, state: str | None = None, zone: str = "") -> list[Collector]:
        """Every collector (every page)."""
        return every_row(lambda size, token: self.list_collectors_page(state, zone, page_size=size, page_token=token))

    def get_collector(self, name: str) -> Collector:
        reply = self.call(self._stub.GetCollector, registry_pb2.GetCollectorRequest(name=name))
        return _collector(reply.collector)

    def explain_collector(self, name: str) -> Explanation:
        reply = self.call(self._stub.ExplainCollector, registry_pb2.ExplainCollectorRequest(name=name))
        return Explanation(
            name=reply.name or name,
            live=reply.live,
            summary=reply.summary,
            findings=[
                Finding(
                    code=f.code,
                    severity=f.severity,
                    message=f.message,
                    at=time_field(f, "at"),
                    advice=f.advice,
                )
                for f in reply.findings
            ],
            collector=_collector(reply.collector) if reply.HasField("collector") else None,
        )

    def register_collector(
        self, name: str, *, username: str, password: str, enable: bool, fingerprint: str = ""
    ) -> Collector:
        request = registry_pb2.RegisterCollectorRequest(
            name=name, username=username, password=password, enable=enable, fingerprint=fingerprint
        )
        return _collector(self.call(self._stub.RegisterCollector, request).collector)

    def set_collector_password(self, name: str, *, password: str, overlap_seconds: int) -> Collector:
        request = registry_pb2.SetCollectorPasswordRequest(
            name=name, password=password, overlap_seconds=overlap_seconds
        )
        return _collector(self.call(self._stub.SetCollectorPassword, request).collector)

    def enable_collector(self, name: str, *, reason: str) -> Collector:
        request = registry_pb2.EnableCollectorRequest(name=name, reason=reason)
        return _collector(self.call(self._stub.EnableCollector, request).collector)

    def disable_collector(self, name: str, *, reason: str) -> Collector:
        request = registry_pb2.DisableCollectorRequest(name=name, reason=reason)
        return _collector(self.call(self._stub.DisableCollector, request).collector)

    def remove_collector(self, name: str, *, reason: str) -> None:
        request = registry_pb2.RemoveCollectorRequest(name=name, reason=reason)
        self.call(self._stub.RemoveCollector, request)

    def list_name_conflicts(self) -> list[NameConflict]:
        """Every refused name claim (every page)."""
        return every_row(self.name_conflicts_page)

    def name_conflicts_page(self, page_size: int, page_token: str) -> tuple[list[NameConflict], str]:
        request = registry_pb2.ListNameConflictsRequest(page_size=page_size, page_token=page_token)
        reply = self.call(self._stub.ListNameConflicts, request)
        conflicts = [
            NameConflict(
                name=c.name,
                instance_uid=c.instance_uid,
                fingerprint=c.fingerprint,
                held_by_fingerprint=c.held_by_fingerprint,
                remote_address=c.remote_address,
                attempts=c.attempts,
                first_seen=time_field(c, "first_seen"),
                last_seen=time_field(c, "last_seen"),
            )
            for c in reply.conflicts
        ]
        return conflicts, reply.next_page_token

    def create_credential(self, name: str, secret: Secret) -> CredentialInfo:
        credential = agent_pb2.Credential(name=name)
        if isinstance(secret, SnmpV2cSecret):
            credential.snmp_v2c.community = secret.community
        elif isinstance(secret, SnmpV3Secret):
            credential.snmp_v3.CopyFrom(
                agent_pb2.SnmpV3(
                    username=secret.username,
                    auth_protocol=secret.auth_protocol,
                    auth_key=secret.auth_key,
                    priv_protocol=secret.priv_protocol,
                    priv_key=secret.priv_key,
                )
            )
        else:
            credential.ssh.CopyFrom(
                agent_pb2.SshLogin(
                    username=secret.username,
                    password=secret.password,
                    private_key_pem=secret.private_key_pem,
                    passphrase=secret.passphrase,
                )
            )
        request = registry_pb2.CreateCredentialRequest(credential=credential)
        return _credential(self.call(self._stub.CreateCredential, request).credential)

    def credentials_page(self, page_size: int, page_token: str) -> tuple[list[CredentialInfo], str]:
        """One page of credentials by name and the next page's token ("" at the end)."""
        request = registry_pb2.ListCredentialsRequest(page_size=page_size, page_token=page_token)
        reply = self.call(self._stub.ListCredentials, request)
        return [_credential(c) for c in reply.credentials], reply.next_page_token

    def delete_credential(self, name: str) -> None:
        self.call(self._stub.DeleteCredential, registry_pb2.DeleteCredentialRequest(name=name))


def credential_type_name(value: int) -> str:
    """`CREDENTIAL_TYPE_SNMP_V2C` -> "snmp-v2c" (the `--type` word); unknown -> its number."""
    try:
        name = registry_pb2.CredentialType.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(_CREDENTIAL_TYPE_PREFIX).lower().replace("_", "-")


def state_name(value: int) -> str:
    """`COLLECTOR_STATE_ENABLED` -> "enabled"; a value this client does not know -> its number."""
    try:
        name = agent_pb2.CollectorState.Name(value)
    except ValueError:
        return str(value)
    return name.removeprefix(_STATE_PREFIX).lower()


def _collector(c: registry_pb2.Collector) -> Collector:
    return Collector(
        name=c.name,
        zone=c.zone,
        state=state_name(c.state),
        online=c.online,
        connected=c.connected,
        fingerprint=c.fingerprint,
        last_seen=time_field(c, "last_seen"),
        instance_uid=c.instance_uid,
        version=c.version,
        remote_address=c.remote_address,
        first_seen=time_field(c, "first_seen"),
        registered_at=time_field(c, "registered_at"),
        transport=c.transport,
        gateway_id=c.gateway_id,
        state_reason=c.state_reason,
        state_changed_by=c.state_changed_by,
        username=c.username,
        last_error=c.last_error,
        last_error_at=time_field(c, "last_error_at"),
        clock_skew_ms=c.clock_skew_ms,
        spool=_spool(c.spool) if c.HasField("spool") else None,
        check_in_seconds=c.check_in_seconds,
        enrolled_by=c.enrolled_by,
        key_rotated_at=time_field(c, "key_rotated_at"),
        password_on_record=c.password_on_record,
        password_rotated_at=time_field(c, "password_rotated_at"),
        previous_password_accepted_until=time_field(c, "previous_password_accepted_until"),
        password_last_proved=c.password_last_proved,
    )


def _spool(s: agent_pb2.SpoolStatus) -> SpoolStatus:
    return SpoolStatus(
        batches=s.batches,
        bytes=s.bytes,
        max_bytes=s.max_bytes,
        max_age_seconds=s.max_age_seconds,
        oldest=datetime.fromtimestamp(s.oldest_unix_ms / 1000, UTC) if s.oldest_unix_ms > 0 else None,
        dropped_full=s.dropped_full,
        dropped_expired=s.dropped_expired,
        dropped_corrupt=s.dropped_corrupt,
        dropped_devices=s.dropped_devices,
    )


def _credential(c: registry_pb2.CredentialInfo) -> CredentialInfo:
    return CredentialInfo(
        name=c.name,
        type=credential_type_name(c.type),
        username=c.username,
        created_at=time_field(c, "created_at"),
        created_by=c.created_by,
    )
