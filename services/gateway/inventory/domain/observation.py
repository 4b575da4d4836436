"""What a collector reported about one device in one result batch, as plain values.

These mirror `outpost.agent.v1.DeviceObservation` and its parts; `from_proto` builds them at
the edge. Where the contract has field presence (`hostname`, `http.title`), None means *not
measured* and "" means *measured, empty*: the old value is gone. Everywhere else an empty
string, a zero number or a missing part means *unknown*, never "now empty": it leaves what
is stored alone (see `merge`).

`observed_facts` and `port_details` flatten the structured parts into the string maps the
inventory stores and the admin API shows ("snmp.sys_name", "http.title", ...).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

TCP = "tcp"

OPEN = "open"
CLOSED = "closed"
FILTERED = "filtered"
PORT_STATES = (OPEN, CLOSED, FILTERED)
"""A port's state as `nmap -sT` names it: connected, refused, no answer in time."""


@dataclass(frozen=True)
class HttpInfo:
    """`title` None: not read; "": a page was read and has no title."""

    status: int = 0
    server: str = ""
    title: str | None = None


@dataclass(frozen=True)
class TlsInfo:
    subject: str = ""
    issuer: str = ""
    not_after: datetime | None = None
    subject_alt_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class SshInfo:
    banner: str = ""
    host_key_type: str = ""
    host_key_fingerprint: str = ""
    host_key_changed: bool = False


@dataclass(frozen=True)
class PortObservation:
    """A port found open (and what answered on it), or filtered, or closed.

    A filtered or closed port says nothing about its service: its service, banner and
    details are ignored.
    """

    port: int
    protocol: str = TCP
    state: str = OPEN
    service: str = ""
    banner: str = ""
    http: HttpInfo | None = None
    tls: TlsInfo | None = None
    ssh: SshInfo | None = None
    service_product: str = ""
    service_version: str = ""

    @property
    def key(self) -> PortKey:
        return (self.protocol, self.port)


PortKey = tuple[str, int]
"""(protocol, port): a port's identity on one device."""


@dataclass(frozen=True)
class NetworkInterface:
    name: str = ""
    mac: str = ""
    addresses: tuple[str, ...] = ()
    description: str = ""
    speed_bps: int = 0


@dataclass(frozen=True)
class SnmpFacts:
    sys_name: str = ""
    sys_descr: str = ""
    sys_object_id: str = ""
    sys_uptime_seconds: int = 0
    engine_id: str = ""
    interfaces: tuple[NetworkInterface, ...] = ()


@dataclass(frozen=True)
class HostAudit:
    """What a credentialed SSH login learned about the host."""

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
    """One device as one job run saw it. `ip` is canonical (`ipaddress` form).

    `hostname` None: not measured (no dns probe, or no answer); "": the resolver said there
    is no name.
    """

    ip: str
    hostname: str | None = None
    ports: tuple[PortObservation, ...] = ()
    mac_addresses: tuple[str, ...] = ()
    snmp: SnmpFacts | None = None
    audit: HostAudit | None = None
    alive_by: str = ""
    notes: tuple[str, ...] = field(default=(), compare=False)
    observed_at: datetime | None = field(default=None, compare=False)
    """When the device was observed, in server time (`domain.clock.server_time`); None: the
    batch's time applies."""


VOLATILE_FACTS = frozenset({"snmp.sys_uptime_seconds", "audit.uptime_seconds"})
"""Facts that change on every scan; history records them only when they go down (a reboot)."""

INTERFACE_PREFIXES = ("snmp.if.", "audit.if.")
"""Facts a source reports as a whole set: a source that lists interfaces lists all of them."""


@functools.lru_cache(maxsize=65_536)
def normalize_mac(raw: str) -> str | None:
    """`aa:bb:cc:dd:ee:ff`, or None for anything that is not a usable unicast MAC address."""
    digits = "".join(ch for ch in raw.lower() if ch in "0123456789abcdef")
    separators = set(raw.lower()) - set("0123456789abcdef")
    if len(digits) != 12 or not separators <= {":", "-", ".", " "}:
        return None
    if digits in ("000000000000", "ffffffffffff") or int(digits[1], 16) & 1:
        return None  # unset, broadcast, or multicast: never one device's address
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_macs(raw: Iterable[str]) -> tuple[str, ...]:
    """The usable MAC addresses of `raw`, normalized, de-duplicated and sorted."""
    return tuple(sorted({mac for mac in map(normalize_mac, raw) if mac is not None}))


def normalize_engine_id(raw: str) -> str:
    """An SNMP engine id as lowercase hex without separators ("" when unknown)."""
    text = raw.strip().lower()
    text = text.removeprefix("0x")
    return "".join(ch for ch in text if ch not in ": ")


def observed_facts(observation: DeviceObservation) -> dict[str, str]:
    """The flattened facts this observation states; unknown (empty, zero) values are left out."""
    facts: dict[str, str] = {}
    snmp, audit = observation.snmp, observation.audit
    if snmp is not None:
        _put(facts, "snmp.sys_name", snmp.sys_name)
        _put(facts, "snmp.sys_descr", snmp.sys_descr)
        _put(facts, "snmp.sys_object_id", snmp.sys_object_id)
        _put(facts, "snmp.sys_uptime_seconds", snmp.sys_uptime_seconds)
        _put_interfaces(facts, "snmp.if.", snmp.interfaces)
    if audit is not None:
        _put(facts, "audit.hostname", audit.hostname)
        _put(facts, "audit.os_name", audit.os_name)
        _put(facts, "audit.os_version", audit.os_version)
        _put(facts, "audit.kernel", audit.kernel)
        _put(facts, "audit.uptime_seconds", audit.uptime_seconds)
        _put(facts, "audit.cpu_count", audit.cpu_count)
        _put(facts, "audit.memory_bytes", audit.memory_bytes)
        _put_interfaces(facts, "audit.if.", audit.interfaces)
    return facts


def reported_interface_prefixes(observation: DeviceObservation) -> tuple[str, ...]:
    """The interface fact prefixes this observation reports as complete sets."""
    prefixes = []
    if observation.snmp is not None and observation.snmp.interfaces:
        prefixes.append("snmp.if.")
    if observation.audit is not None and observation.audit.interfaces:
        prefixes.append("audit.if.")
    return tuple(prefixes)


def port_details(port: PortObservation) -> dict[str, str]:
    """The flattened service details of one port; unknown values are left out."""
    details: dict[str, str] = {}
    _put(details, "service.product", port.service_product)
    _put(details, "service.version", port.service_version)
    if port.http is not None:
        _put(details, "http.status", port.http.status)
        _put(details, "http.server", port.http.server)
        _put(details, "http.title", port.http.title or "")
    if port.tls is not None:
        _put(details, "tls.subject", port.tls.subject)
        _put(details, "tls.issuer", port.tls.issuer)
        if port.tls.not_after is not None:
            details["tls.not_after"] = port.tls.not_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _put(details, "tls.subject_alt_names", ",".join(port.tls.subject_alt_names))
    if port.ssh is not None:
        _put(details, "ssh.host_key_type", port.ssh.host_key_type)
        _put(details, "ssh.host_key_fingerprint", port.ssh.host_key_fingerprint)
        if port.ssh.host_key_fingerprint:
            # Only meaningful next to a key the probe actually read.
            details["ssh.host_key_changed"] = "true" if port.ssh.host_key_changed else "false"
    return details


def port_cleared_details(port: PortObservation) -> frozenset[str]:
    """Details this port was measured *without*: their old values are gone ("http.title")."""
    if port.http is not None and port.http.title == "":
        return frozenset({"http.title"})
    return frozenset()


def port_banner(port: PortObservation) -> str:
    """The generic banner, or the SSH probe's when the generic probe read none."""
    if port.banner:
        return port.banner
    return port.ssh.banner if port.ssh is not None else ""


def _put(target: dict[str, str], key: str, value: str | int) -> None:
    if value:
        target[key] = str(value)


def _put_interfaces(facts: dict[str, str], prefix: str, interfaces: Iterable[NetworkInterface]) -> None:
    for position, interface in enumerate(interfaces):
        name = interface.name or f"#{position}"
        base = f"{prefix}{name}."
        _put(facts, base + "mac", normalize_mac(interface.mac) or interface.mac.strip().lower())
        _put(facts, base + "addresses", ",".join(interface.addresses))
        _put(facts, base + "description", interface.description)
        _put(facts, base + "speed_bps", interface.speed_bps)
