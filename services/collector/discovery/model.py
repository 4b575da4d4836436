"""What a discovery run is asked to do, and what it reports: plain frozen dataclasses.

No protobuf here: `to_proto.py` converts at the edge. Credentials never show their
secrets in `repr()` (and so never in a log line or a traceback that prints them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from outpost import scan_limits
from outpost.errors import InvalidArgument, OutpostError

PROBES = frozenset(scan_limits.PROBES)

# Names the job's SnmpV3 credential may use; "" means none (noAuthNoPriv / authNoPriv).
SNMP_AUTH_PROTOCOLS = frozenset({"", "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"})
SNMP_PRIV_PROTOCOLS = frozenset({"", "DES", "3DES", "AES", "AES128", "AES192", "AES256", "AES192C", "AES256C"})

_REDACTED = "'***'"


class DeadlineExceeded(OutpostError):
    """The run's deadline passed; devices found before it were already yielded."""


@dataclass(frozen=True)
class SnmpV2cCredential:
    community: str

    def __post_init__(self) -> None:
        if not self.community:
            raise InvalidArgument("SNMP v2c credential has an empty community")

    def __repr__(self) -> str:
        return f"SnmpV2cCredential(community={_REDACTED})"


@dataclass(frozen=True)
class SnmpV3Credential:
    """USM user; protocols by name ("SHA", "SHA256", "MD5" / "AES", "AES256", "DES")."""

    username: str
    auth_protocol: str = ""
    auth_key: str = ""
    priv_protocol: str = ""
    priv_key: str = ""

    def __post_init__(self) -> None:
        if not self.username:
            raise InvalidArgument("SNMP v3 credential has an empty username")
        auth, priv = self.auth_protocol.upper(), self.priv_protocol.upper()
        if auth not in SNMP_AUTH_PROTOCOLS:
            raise InvalidArgument(
                f"SNMP v3 auth protocol {self.auth_protocol!r} is not one of {sorted(SNMP_AUTH_PROTOCOLS - {''})}"
            )
        if priv not in SNMP_PRIV_PROTOCOLS:
            raise InvalidArgument(
                f"SNMP v3 privacy protocol {self.priv_protocol!r} is not one of {sorted(SNMP_PRIV_PROTOCOLS - {''})}"
            )
        if priv and not auth:
            raise InvalidArgument("SNMP v3 privacy needs an auth protocol too (authPriv)")
        if auth and len(self.auth_key) < 8:
            raise InvalidArgument("SNMP v3 auth key is shorter than 8 characters (RFC 3414)")
        if priv and len(self.priv_key) < 8:
            raise InvalidArgument("SNMP v3 privacy key is shorter than 8 characters (RFC 3414)")

    def __repr__(self) -> str:
        return (
            f"SnmpV3Credential(username={self.username!r}, auth_protocol={self.auth_protocol!r}, "
            f"auth_key={_REDACTED}, priv_protocol={self.priv_protocol!r}, priv_key={_REDACTED})"
        )


@dataclass(frozen=True)
class SshCredential:
    """A login: a password, or an OpenSSH/PEM private key (with its passphrase, if any)."""

    username: str
    password: str = ""
    private_key_pem: str = ""
    passphrase: str = ""

    def __post_init__(self) -> None:
        if not self.username:
            raise InvalidArgument("SSH credential has an empty username")
        if not self.password and not self.private_key_pem:
            raise InvalidArgument(f"SSH credential for {self.username!r} has neither a password nor a private key")

    def __repr__(self) -> str:
        return (
            f"SshCredential(username={self.username!r}, password={_REDACTED}, "
            f"private_key_pem={_REDACTED}, passphrase={_REDACTED})"
        )


SnmpCredential = SnmpV2cCredential | SnmpV3Credential


@dataclass(frozen=True)
class DiscoveryPlan:
    """One discovery run: which targets, which ports, which probes, and the limits.

    `concurrency` bounds probes in flight (each holds at most one socket); `rate_per_second`
    bounds new probes per second (0 = unlimited); `timeout` is per probe, `deadline` for
    the whole run, both in seconds. `snmp_port`/`ssh_port` are where those probes go.
    """

    targets: tuple[str, ...]
    exclusions: tuple[str, ...]
    ports: tuple[int, ...]
    probes: frozenset[str]
    concurrency: int = 256
    rate_per_second: int = 0
    timeout: float = 1.0
    deadline: float = 3600
    dns_resolver: tuple[str, int] | None = None
    snmp: SnmpCredential | None = None
    ssh: SshCredential | None = None
    snmp_port: int = 161
    ssh_port: int = 22
    batch_max_devices: int = 64

    def __post_init__(self) -> None:
        # The scheduler checked the discovery with these same rules when it was created
        # (`outpost.scan_limits`); a run is refused here only if something bypassed it.
        scan_limits.check_probes(self.probes)
        if not self.targets:
            raise InvalidArgument("a discovery needs at least one target")
        if len(set(self.ports)) != len(self.ports):
            raise InvalidArgument("ports are listed more than once")
        scan_limits.check_ports((*self.ports, self.snmp_port, self.ssh_port), self.probes, empty_means_default=False)
        if "tcp" in self.probes and not self.ports:
            raise InvalidArgument("the tcp probe needs at least one port")
        if not self.timeout > 0 or not self.deadline > 0:
            raise InvalidArgument("timeout and deadline must be positive")
        scan_limits.check_rates(
            concurrency=self.concurrency,
            rate_per_second=self.rate_per_second,
            timeout_ms=math.ceil(self.timeout * 1000),
            deadline_seconds=math.ceil(self.deadline),
        )
        if self.batch_max_devices < 1:
            raise InvalidArgument("batch_max_devices must be at least 1")


class PortState(Enum):
    """A TCP port as `nmap -sT` names it: open = connected, closed = refused, filtered = no answer."""

    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"


@dataclass(frozen=True)
class HttpInfo:
    """`title` None: no page was read; "": a page was read and has no <title>."""

    status: int
    server: str = ""
    title: str | None = None


@dataclass(frozen=True)
class TlsInfo:
    subject: str
    issuer: str
    not_after_unix: int
    subject_alt_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshInfo:
    banner: str = ""
    host_key_type: str = ""
    host_key_fingerprint: str = ""
    host_key_changed: bool = False


@dataclass(frozen=True)
class PortObservation:
    """A port the scan found open (with what answered on it) or filtered (nothing else known)."""

    port: int
    protocol: str = "tcp"
    state: PortState = PortState.OPEN
    service: str = ""
    banner: str = ""
    http: HttpInfo | None = None
    tls: TlsInfo | None = None
    ssh: SshInfo | None = None
    service_product: str = ""
    """From nmap's fingerprints (`recognition.py`): "Postfix smtpd", "OpenSSH"; "" if unknown."""
    service_version: str = ""


@dataclass(frozen=True)
class NetworkInterface:
    name: str
    mac: str = ""
    addresses: tuple[str, ...] = ()
    description: str = ""
    speed_bps: int = 0


@dataclass(frozen=True)
class SnmpFacts:
    sys_name: str = ""
    sys_descr: str = ""
    sys_object_id: str = ""
    sys_uptime_centiseconds: int = 0
    engine_id: str = ""
    interfaces: tuple[NetworkInterface, ...] = ()


@dataclass(frozen=True)
class HostAudit:
    hostname: str = ""
    os_name: str = ""
    os_version: str = ""
    kernel: str = ""
    uptime_seconds: int = 0
    cpu_count: int = 0
    memory_bytes: int = 0
    interfaces: tuple[NetworkInterface, ...] = ()


@dataclass(frozen=True)
class DeviceObservation:
    """One live host: how it was seen alive, its open and filtered ports and what they told us.

    `hostname` None: not measured (no dns probe, or the resolver did not answer); "": the
    resolver answered that there is no name (NXDOMAIN, no PTR record). The difference is
    what lets the inventory drop a name that is gone and keep one it could not check.
    Closed ports are not listed: a scanned port that is not in `ports` was refused.
    """

    ip: str
    alive_by: str
    hostname: str | None = None
    rtt_ms: float = 0.0
    ports: tuple[PortObservation, ...] = ()
    snmp: SnmpFacts | None = None
    audit: HostAudit | None = None
    mac_addresses: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    observed_at_unix_ms: int = 0
    """When the host's probes finished, by the collector's wall clock (0: unknown)."""


@dataclass(frozen=True)
class Progress:
    targets_done: int
    targets_total: int
    devices_found: int


@dataclass(frozen=True)
class SnmpOutcome:
    """`answered`: an agent replied (proves the host is alive), even without facts."""

    answered: bool
    facts: SnmpFacts | None = None
    note: str = ""


@dataclass(frozen=True)
class SshOutcome:
    ssh: SshInfo | None = None
    audit: HostAudit | None = None
    notes: tuple[str, ...] = ()
