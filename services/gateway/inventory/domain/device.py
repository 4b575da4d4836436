"""A device as the inventory keeps it, one change of one of its fields, and a batch's context.

History field names are the operator's vocabulary, shown verbatim by `outpostctl devices
show`: "created", "ip", "hostname", "mac_addresses", "snmp_engine_id", "port.22" (open /
closed / filtered), "port.80.banner", "port.80.service", "port.443.tls.not_after" (a port detail),
"facts.audit.kernel" (a fact). A TCP port is named by its number alone; any other protocol
adds it: "port.161/udp".
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.gateway.inventory.domain.observation import CLOSED, FILTERED, OPEN, PORT_STATES, TCP, PortKey

__all__ = ["CLOSED", "CREATED", "FILTERED", "OPEN", "PORT_STATES"]

CREATED = "created"


@dataclass(frozen=True)
class PortRecord:
    """One port of one device; `state` is "open", "closed" or "filtered" (`PORT_STATES`).

    A closed or filtered port keeps what was last seen on it while it was open.
    """

    protocol: str
    port: int
    service: str
    banner: str
    details: Mapping[str, str]
    first_seen: datetime
    last_seen: datetime
    state: str

    @property
    def key(self) -> PortKey:
        return (self.protocol, self.port)

    @property
    def open(self) -> bool:
        return self.state == OPEN


@dataclass(frozen=True)
class DeviceRecord:
    """One device of a zone, with every port it ever had open or filtered, in its last known state."""

    id: str
    zone: str
    ip: str
    hostname: str
    mac_addresses: tuple[str, ...]
    snmp_engine_id: str
    facts: Mapping[str, str]
    ports: Mapping[PortKey, PortRecord]
    first_seen: datetime
    last_seen: datetime
    last_collector: str
    last_job_run_id: str
    # Lifecycle (domain/lifecycle.py): the merge leaves these alone; commits and run ends set them.
    retired_at: datetime | None = None
    retired_reason: str = ""
    missed_runs: int = 0
    """Read-only view: the smallest missed-runs count over the discoveries that scan it."""

    def open_ports(self) -> list[PortRecord]:
        return [p for p in self.known_ports() if p.open]

    def known_ports(self) -> list[PortRecord]:
        """Every port, in any state, by number."""
        return sorted(self.ports.values(), key=lambda p: (p.port, p.protocol))


@dataclass(frozen=True)
class Change:
    """One field of one device changing, as one job run showed it."""

    device_id: str
    field: str
    old_value: str
    new_value: str
    changed_at: datetime
    job_run_id: str


@dataclass(frozen=True)
class Sighting:
    """What every observation of one batch shares: where, when, by whom, and what was scanned.

    `scanned_ports` are the TCP ports the job run probed (its assignment's `ports`, if the
    tcp probe ran). Only a port in it can be found *closed* by its absence; pass an empty
    set when unknown, and ports only open or turn filtered as the observation lists them.
    """

    zone: str
    collector: str
    job_run_id: str
    observed_at: datetime
    scanned_ports: frozenset[int] = field(default_factory=frozenset)


def new_device_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits: creation time in milliseconds first, then 74 random bits.

    Time-ordered so a zone's new devices land at the right edge of every index that starts
    with the device id (the devices' primary key, its ports', history's, MACs', missed runs'):
    the pages written stay in cache however large the inventory grows. Random (UUIDv4) ids
    sent each new device to a random leaf page of each of those indexes, which made ingest
    slow down as a zone grew (docs/benchmarks.md, ADR 0032). Ids made before keep their form;
    both are 32 hex digits and nothing reads meaning into them.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return uuid.UUID(int=value).hex


def port_field(key: PortKey, detail: str = "") -> str:
    """'port.22', 'port.161/udp', 'port.80.banner', 'port.443.tls.issuer'."""
    protocol, number = key
    name = f"port.{number}" if protocol == TCP else f"port.{number}/{protocol}"
    return f"{name}.{detail}" if detail else name
