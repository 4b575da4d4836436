"""The edge: `outpost.agent.v1` result messages in, inventory observations out.

Bad input from a collector is never fatal and never poisons a batch: a device whose IP is
not an IP address, or a port outside 1-65535, is left out and named in `rejected`, and
the rest of the batch is committed (so the batch can be acked and leave the spool). Text
is bounded: a banner keeps its first `MAX_BANNER_CHARS` characters, every other string its
first `MAX_TEXT_CHARS`, without NUL characters (PostgreSQL text cannot hold them) and
without surrounding whitespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from outpost.agent.v1 import agent_pb2
from services.gateway.inventory.domain.clock import server_time
from services.gateway.inventory.domain.observation import (
    CLOSED,
    FILTERED,
    OPEN,
    TCP,
    DeviceObservation,
    HostAudit,
    HttpInfo,
    NetworkInterface,
    PortObservation,
    SnmpFacts,
    SshInfo,
    TlsInfo,
)

MAX_BANNER_CHARS = 4096
MAX_TEXT_CHARS = 1024
MAX_PORT = 65_535


@dataclass(frozen=True)
class Observations:
    """A batch's devices as observations, and why any were left out."""

    devices: list[DeviceObservation]
    rejected: list[str]


def observations_from_proto(
    devices: Iterable[agent_pb2.DeviceObservation], *, clock_skew_ms: int = 0, received_at: datetime | None = None
) -> Observations:
    """The batch's devices; each one's own observed time in server time when `received_at` is given."""
    accepted: list[DeviceObservation] = []
    rejected: list[str] = []
    for device in devices:
        try:
            accepted.append(
                observation_from_proto(device, rejected, clock_skew_ms=clock_skew_ms, received_at=received_at)
            )
        except ValueError as exc:
            rejected.append(str(exc))
    return Observations(accepted, rejected)


def observed_at_from_proto(batch: agent_pb2.ResultBatch, received_at: datetime, clock_skew_ms: int = 0) -> datetime:
    """When the collector saw the batch's devices, in server time (`domain.clock.server_time`).

    The collector's clock is corrected by the session's measured skew and bounded by
    `received_at`: an observation is never later than its arrival, whatever the collector's
    clock says (a wrong clock, or a collector writing "last seen 9999" so its sighting wins
    every merge). A batch that does not say counts as received. Earlier times are kept: a
    spooled batch is legitimately hours or days old.
    """
    at = server_time(batch.observed_at_unix_ms, clock_skew_ms=clock_skew_ms, received_at=received_at)
    return received_at if at is None else at


def observation_from_proto(
    device: agent_pb2.DeviceObservation,
    rejected: list[str] | None = None,
    *,
    clock_skew_ms: int = 0,
    received_at: datetime | None = None,
) -> DeviceObservation:
    """One device; raises ValueError when its IP is unusable. Bad ports go to `rejected`.

    Its `observed_at` is its own `observed_at_unix_ms` in server time when `received_at`
    is given and the collector said it (older collectors do not: then None, the batch's time).
    """
    ip = canonical_ip(device.ip)
    ports = []
    for port in device.ports:
        if not 1 <= port.port <= MAX_PORT:
            if rejected is not None:
                rejected.append(f"device {ip}: port {port.port} is outside 1-{MAX_PORT}")
            continue
        try:
            ports.append(_port(port))
        except ValueError as exc:
            if rejected is not None:
                rejected.append(f"device {ip}: {exc}")
    return DeviceObservation(
        ip=ip,
        hostname=_text(device.hostname) if device.HasField("hostname") else None,
        ports=tuple(ports),
        mac_addresses=tuple(_text(mac) for mac in device.mac_addresses),
        snmp=_snmp(device.snmp) if device.HasField("snmp") else None,
        audit=_audit(device.audit) if device.HasField("audit") else None,
        alive_by=_text(device.alive_by),
        notes=tuple(_text(note) for note in device.notes),
        observed_at=server_time(device.observed_at_unix_ms, clock_skew_ms=clock_skew_ms, received_at=received_at)
        if received_at is not None
        else None,
    )


def canonical_ip(raw: str) -> str:
    """The address in `ipaddress` form ("10.0.0.1", "2001:db8::1"); ValueError if it is none."""
    text = raw.strip()
    if _is_canonical_ipv4(text):
        return text  # the common case, without ipaddress's parse (a tenth of ingest's CPU)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"device ip {raw[:64]!r} is not an IP address") from None


def _is_canonical_ipv4(text: str) -> bool:
    """Dotted quad, ASCII digits, no leading zeros, each at most 255: `ipaddress`'s own form."""
    parts = text.split(".")
    return len(parts) == 4 and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0") and int(p) <= 255 for p in parts
    )


_PORT_STATES = {
    agent_pb2.PORT_STATE_UNSPECIFIED: OPEN,  # collectors that predate states list open ports only
    agent_pb2.PORT_STATE_OPEN: OPEN,
    agent_pb2.PORT_STATE_CLOSED: CLOSED,
    agent_pb2.PORT_STATE_FILTERED: FILTERED,
}


def _port(port: agent_pb2.PortObservation) -> PortObservation:
    """One port; raises ValueError for a state this gateway does not know (a newer collector's)."""
    state = _PORT_STATES.get(port.state)
    if state is None:
        raise ValueError(f"port {port.port}: unknown state {port.state}")
    return PortObservation(
        port=port.port,
        protocol=_text(port.protocol).lower() or TCP,
        state=state,
        service=_text(port.service),
        banner=_text(port.banner, MAX_BANNER_CHARS),
        http=HttpInfo(
            port.http.status,
            _text(port.http.server),
            _text(port.http.title) if port.http.HasField("title") else None,
        )
        if port.HasField("http")
        else None,
        tls=_tls(port.tls) if port.HasField("tls") else None,
        ssh=SshInfo(
            banner=_text(port.ssh.banner, MAX_BANNER_CHARS),
            host_key_type=_text(port.ssh.host_key_type),
            host_key_fingerprint=_text(port.ssh.host_key_fingerprint),
            host_key_changed=port.ssh.host_key_changed,
        )
        if port.HasField("ssh")
        else None,
        service_product=_text(port.service_product),
        service_version=_text(port.service_version),
    )


def _tls(tls: agent_pb2.TlsInfo) -> TlsInfo:
    not_after = None
    if tls.not_after_unix > 0:
        try:
            not_after = datetime.fromtimestamp(tls.not_after_unix, UTC)
        except (OverflowError, OSError, ValueError):
            not_after = None  # beyond what a datetime holds: unknown, not an error
    return TlsInfo(
        subject=_text(tls.subject),
        issuer=_text(tls.issuer),
        not_after=not_after,
        subject_alt_names=tuple(_text(name) for name in tls.subject_alt_names),
    )


def _interfaces(interfaces: Iterable[agent_pb2.NetworkInterface]) -> tuple[NetworkInterface, ...]:
    return tuple(
        NetworkInterface(
            name=_text(i.name),
            mac=_text(i.mac),
            addresses=tuple(_text(a) for a in i.addresses),
            description=_text(i.description),
            speed_bps=i.speed_bps,
        )
        for i in interfaces
    )


def _snmp(snmp: agent_pb2.SnmpFacts) -> SnmpFacts:
    return SnmpFacts(
        sys_name=_text(snmp.sys_name),
        sys_descr=_text(snmp.sys_descr),
        sys_object_id=_text(snmp.sys_object_id),
        sys_uptime_seconds=snmp.sys_uptime_centiseconds // 100,
        engine_id=_text(snmp.engine_id),
        interfaces=_interfaces(snmp.interfaces),
    )


def _audit(audit: agent_pb2.HostAudit) -> HostAudit:
    return HostAudit(
        hostname=_text(audit.hostname),
        os_name=_text(audit.os_name),
        os_version=_text(audit.os_version),
        kernel=_text(audit.kernel),
        uptime_seconds=audit.uptime_seconds,
        cpu_count=audit.cpu_count,
        memory_bytes=audit.memory_bytes,
        interfaces=_interfaces(audit.interfaces),
    )


def _text(value: str, limit: int = MAX_TEXT_CHARS) -> str:
    # PostgreSQL text and jsonb cannot hold NUL, and raw banners often carry one.
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value.strip()[:limit]
