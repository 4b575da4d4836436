"""The gateway's admin calls as plain records: its own info, and the device inventory.

The inventory (`InventoryService`) is served on the gateway's address: devices the
collectors found, keyed by IP within a zone, each with every port it ever had open or
filtered (and that port's state now), its facts, and the history of what changed between
job runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from outpost.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from outpostctl.endpoints import Connection, Endpoints, time_field

OPEN = "open"


@dataclass(frozen=True)
class Listener:
    transport: str
    address: str
    tls: bool


@dataclass(frozen=True)
class GatewayInfo:
    gateway_id: str
    version: str
    listeners: list[Listener]
    started_at: datetime | None
    sessions: int


@dataclass(frozen=True)
class Port:
    """One known port, its state, and what answered on it (a device's `services` in JSON)."""

    port: int
    protocol: str
    # "open", "closed" or "filtered", as `nmap -sT` names them.
    state: str
    service: str
    banner: str
    # HTTP status/server/title, TLS subject/issuer/expiry, SSH host key, ...
    details: dict[str, str]
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class Device:
    """One device of the inventory (field order is the JSON order)."""

    ip: str
    zone: str
    hostname: str
    open_ports: list[int]
    services: list[Port]
    mac_addresses: list[str]
    facts: dict[str, str]
    first_seen: datetime | None
    last_seen: datetime | None
    id: str
    snmp_engine_id: str
    last_collector: str
    last_job_run_id: str
    notes: list[str] = field(default_factory=list)
    """What the probes said besides facts ("snmp: no answer"): the newest per probe, not history."""
    # Lifecycle: hidden from `devices list` while retired; missed runs in a row (docs/inventory.md).
    retired: bool = False
    missed_runs: int = 0
    retired_at: datetime | None = None


@dataclass(frozen=True)
class DeviceChange:
    """One field of a device changing: "port.22", "hostname", "facts.audit.kernel", ..."""

    field: str
    old_value: str
    new_value: str
    changed_at: datetime | None
    job_run_id: str


@dataclass(frozen=True)
class DeviceDetail:
    device: Device
    history: list[DeviceChange]
    """The newest entries, oldest first."""
    history_next_page_token: str = ""
    """Non-empty when older entries exist (`device_history` pages through them)."""


@dataclass(frozen=True)
class DeviceFilter:
    """`devices list` filters; every one given must hold ("" / 0 / None: any)."""

    zone: str = ""
    include_retired: bool = False
    cidr: str = ""
    port: int = 0
    service: str = ""
    seen_since: datetime | None = None


HISTORY_PAGE_SIZE = 1000
"""The most ListDeviceHistory returns in one page."""


class GatewayClient(Connection):
    service = "gateway"

    def __init__(self, endpoints: Endpoints) -> None:
        super().__init__(endpoints.gateway, endpoints)
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self._inventory = gateway_pb2_grpc.InventoryServiceStub(self.channel)

    def get_gateway_info(self) -> GatewayInfo:
        reply = self.call(self._stub.GetGatewayInfo, gateway_pb2.GetGatewayInfoRequest())
        started = reply.started_at.ToDatetime(tzinfo=UTC) if reply.HasField("started_at") else None
        return GatewayInfo(
            gateway_id=reply.gateway_id,
            version=reply.version,
            listeners=[Listener(x.transport, x.address, x.tls) for x in reply.listeners],
            started_at=started,
            sessions=reply.sessions,
        )

    def list_devices_page(self, where: DeviceFilter, page_size: int, page_token: str) -> tuple[list[Device], str]:
        """One page of devices in (zone, IP) order and the next page's token ("" at the end)."""
        request = gateway_pb2.ListDevicesRequest(
            zone=where.zone,
            include_retired=where.include_retired,
            cidr=where.cidr,
            port=where.port,
            service=where.service,
            page_size=page_size,
            page_token=page_token,
        )
        if where.seen_since is not None:
            request.seen_since.FromDatetime(where.seen_since)
        reply = self.call(self._inventory.ListDevices, request)
        return [_device(d) for d in reply.devices], reply.next_page_token

    def get_device(self, ip: str, zone: str = "") -> DeviceDetail:
        """One device and its newest history; `zone` is needed when the IP exists in several."""
        reply = self.call(self._inventory.GetDevice, gateway_pb2.GetDeviceRequest(ip=ip, zone=zone))
        history = [_change(c) for c in reply.history]
        return DeviceDetail(_device(reply.device), history, reply.history_next_page_token)

    def device_history_page(
        self, ip: str, zone: str = "", *, page_size: int = HISTORY_PAGE_SIZE, page_token: str = ""
    ) -> tuple[list[DeviceChange], str]:
        """One page of a device's history, newest first, and the next page's token ("" at the end)."""
        reply = self.call(
            self._inventory.ListDeviceHistory,
            gateway_pb2.ListDeviceHistoryRequest(ip=ip, zone=zone, page_size=page_size, page_token=page_token),
        )
        return [_change(c) for c in reply.changes], reply.next_page_token

    def device_history(
        self, ip: str, zone: str = "", *, limit: int | None = None, page_token: str = ""
    ) -> tuple[list[DeviceChange], bool]:
        """The newest `limit` entries (all without one), newest first, and whether older ones exist."""
        changes: list[DeviceChange] = []
        token = page_token
        while True:
            wanted = HISTORY_PAGE_SIZE if limit is None else min(HISTORY_PAGE_SIZE, limit - len(changes))
            page, token = self.device_history_page(ip, zone, page_size=wanted, page_token=token)
            changes.extend(page)
            if not token:
                return changes, False
            if limit is not None and len(changes) >= limit:
                return changes, True


def _device(d: gateway_pb2.Device) -> Device:
    ports = sorted((_port(p) for p in d.ports), key=lambda p: (p.port, p.protocol))
    open_ports = sorted({p.port for p in ports if p.state == OPEN})
    return Device(
        ip=d.ip,
        zone=d.zone,
        hostname=d.hostname,
        open_ports=open_ports,
        services=ports,
        mac_addresses=list(d.mac_addresses),
        facts=dict(sorted(d.facts.items())),
        first_seen=time_field(d, "first_seen"),
        last_seen=time_field(d, "last_seen"),
        id=d.id,
        snmp_engine_id=d.snmp_engine_id,
        last_collector=d.last_collector,
        last_job_run_id=d.last_job_run_id,
        notes=list(d.notes),
        retired=d.retired,
        missed_runs=d.missed_runs,
        retired_at=time_field(d, "retired_at"),
    )


def _change(c: gateway_pb2.DeviceChange) -> DeviceChange:
    return DeviceChange(
        field=c.field,
        old_value=c.old_value,
        new_value=c.new_value,
        changed_at=time_field(c, "changed_at"),
        job_run_id=c.job_run_id,
    )


def _port(p: gateway_pb2.Port) -> Port:
    return Port(
        port=p.port,
        protocol=p.protocol,
        state=p.state or OPEN,  # a gateway that predates states lists open ports only
        service=p.service,
        banner=p.banner,
        details=dict(sorted(p.details.items())),
        first_seen=time_field(p, "first_seen"),
        last_seen=time_field(p, "last_seen"),
    )
