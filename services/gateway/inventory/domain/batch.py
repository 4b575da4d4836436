"""Plan a whole result batch against the stored devices of its zone: identities, then merges.

Identity within a zone (the full rule and its limits: docs/adr/0007):

1. A *strong* identifier — a MAC address or an SNMP engine id — names exactly one stored
   device of the zone, and that device is at another IP: it moved, if the new IP is free
   and the device was not already seen at its IP in this job run. The device keeps its
   id and history and records an "ip" change.
2. Otherwise the device is the one at (zone, ip), or a new one.

A strong identifier is ignored when it does not single out one device: the batch reports
it for several IPs (a router answering ARP for a subnet, cloned VMs sharing an SNMP engine
id), or several stored devices carry it. Devices are processed in batch order, each merge
seeing the ones before it, so a device listed twice in one batch is merged twice, not
created twice.

Each observation is merged at its own time when it has one (the collector's
`observed_at_unix_ms`, in server time), else at the batch's. One older than what another
run already recorded for its device is skipped (`merge.is_stale`) and listed in `skipped`,
so the caller can log and count it: never silently.

The plan lists what to write: every device touched (final state), the ids of stored devices
whose IP changes (the store moves them out of the way first, so a device may take an IP
another one is leaving in the same batch), the port rows that changed, the history, and
the devices' notes (`domain.notes`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.gateway.inventory.domain.device import (
    Change,
    DeviceRecord,
    PortRecord,
    Sighting,
    new_device_id,
)
from services.gateway.inventory.domain.merge import is_stale, merge
from services.gateway.inventory.domain.notes import NotesUpdate, notes_update
from services.gateway.inventory.domain.observation import DeviceObservation, normalize_engine_id, normalize_macs


@dataclass(frozen=True)
class StaleObservation:
    """An observation skipped: its device already shows a newer sighting by another run."""

    device_id: str
    ip: str
    observed_at: datetime
    """The observation's time (server time)."""
    last_seen: datetime
    """The stored device's newer time."""
    last_job_run_id: str
    """The run that recorded it."""


@dataclass(frozen=True)
class BatchPlan:
    devices: list[DeviceRecord]
    """Every device the batch touched, in its final state, each once."""
    moved: list[str]
    """Ids of stored devices whose IP this batch changes."""
    ports: list[tuple[str, PortRecord]]
    """(device id, port) for every port row that is new or changed."""
    changes: list[Change]
    stale: int
    """Observations skipped because another run already recorded something newer."""
    skipped: list[StaleObservation] = field(default_factory=list)
    """Those observations, one entry each."""
    notes: list[NotesUpdate] = field(default_factory=list)
    """At most one per device: the notes to replace and store."""


def plan_batch(
    stored: Iterable[DeviceRecord],
    observations: Sequence[DeviceObservation],
    sighting: Sighting,
    *,
    new_id: Callable[[], str] = new_device_id,
    probes: Collection[str] | None = None,
) -> BatchPlan:
    """Decide what `observations` do to the zone's `stored` devices (those the batch may touch).

    `probes`: the probes the batch's run ran (None: unknown), which decide whose notes go.
    """
    originals = {device.id: device for device in stored}
    index = ZoneIndex(originals.values())
    ignored_macs, ignored_engines = _shared_identifiers(observations)
    touched: dict[str, DeviceRecord] = {}
    changes: list[Change] = []
    skipped: list[StaleObservation] = []
    notes: dict[str, NotesUpdate] = {}
    for observation in observations:
        seen = sighting if observation.observed_at is None else replace(sighting, observed_at=observation.observed_at)
        current = index.find(observation, seen, ignored_macs, ignored_engines)
        if current is not None and is_stale(current, seen):
            skipped.append(
                StaleObservation(
                    current.id, observation.ip, seen.observed_at, current.last_seen, current.last_job_run_id
                )
            )
            continue
        same_run = current is not None and current.last_job_run_id == seen.job_run_id
        record, device_changes = merge(current, observation, seen, new_id=new_id)
        index.put(current, record)
        touched[record.id] = record
        changes.extend(device_changes)
        update = notes_update(
            record.id,
            observation.notes,
            at=seen.observed_at,
            job_run_id=seen.job_run_id,
            probes=probes,
            same_run=same_run,
        )
        if update is not None:
            notes[record.id] = _then(notes.get(record.id), update)
    moved = [i for i, record in touched.items() if i in originals and originals[i].ip != record.ip]
    ports = [
        (device.id, port)
        for device in touched.values()
        for key, port in sorted(device.ports.items())
        if device.id not in originals or originals[device.id].ports.get(key) != port
    ]
    return BatchPlan(list(touched.values()), moved, ports, changes, len(skipped), skipped, list(notes.values()))


def _then(earlier: NotesUpdate | None, later: NotesUpdate) -> NotesUpdate:
    """Two updates of one device's notes in one batch, as one."""
    if earlier is None:
        return later
    kept = tuple(note for note in earlier.notes if note.source not in later.replaced)
    return NotesUpdate(later.device_id, earlier.replaced | later.replaced, kept + later.notes)


class ZoneIndex:
    """The devices of one zone by IP, MAC address and SNMP engine id, updated as merges run."""

    def __init__(self, devices: Iterable[DeviceRecord]) -> None:
        self._by_id: dict[str, DeviceRecord] = {}
        self._by_ip: dict[str, str] = {}
        self._by_mac: defaultdict[str, set[str]] = defaultdict(set)
        self._by_engine: defaultdict[str, set[str]] = defaultdict(set)
        for device in devices:
            self._add(device)

    def find(
        self,
        observation: DeviceObservation,
        sighting: Sighting,
        ignored_macs: frozenset[str] = frozenset(),
        ignored_engines: frozenset[str] = frozenset(),
    ) -> DeviceRecord | None:
        """The stored device `observation` is about, or None for a new one."""
        at_ip = self._by_id.get(self._by_ip.get(observation.ip, ""))
        named: set[str] = set()
        for mac in normalize_macs(observation.mac_addresses):
            if mac not in ignored_macs and len(self._by_mac.get(mac, ())) == 1:
                named |= self._by_mac[mac]
        engine = normalize_engine_id(observation.snmp.engine_id) if observation.snmp is not None else ""
        if engine and engine not in ignored_engines and len(self._by_engine.get(engine, ())) == 1:
            named |= self._by_engine[engine]
        if len(named) != 1:
            return at_ip
        device = self._by_id[named.pop()]
        if device.ip == observation.ip:
            return device
        if at_ip is None and device.last_job_run_id != sighting.job_run_id:
            return device  # it moved
        return at_ip

    def put(self, old: DeviceRecord | None, new: DeviceRecord) -> None:
        if old is not None:
            self._remove(old)
        self._add(new)

    def _add(self, device: DeviceRecord) -> None:
        self._by_id[device.id] = device
        self._by_ip[device.ip] = device.id
        for mac in device.mac_addresses:
            self._by_mac[mac].add(device.id)
        if device.snmp_engine_id:
            self._by_engine[device.snmp_engine_id].add(device.id)

    def _remove(self, device: DeviceRecord) -> None:
        del self._by_id[device.id]
        if self._by_ip.get(device.ip) == device.id:
            del self._by_ip[device.ip]
        for mac in device.mac_addresses:
            self._by_mac[mac].discard(device.id)
        if device.snmp_engine_id:
            self._by_engine[device.snmp_engine_id].discard(device.id)


def _shared_identifiers(observations: Iterable[DeviceObservation]) -> tuple[frozenset[str], frozenset[str]]:
    """MACs and engine ids this batch reports for more than one IP: they identify nothing."""
    mac_ips: defaultdict[str, set[str]] = defaultdict(set)
    engine_ips: defaultdict[str, set[str]] = defaultdict(set)
    for observation in observations:
        for mac in normalize_macs(observation.mac_addresses):
            mac_ips[mac].add(observation.ip)
        if observation.snmp is not None and (engine := normalize_engine_id(observation.snmp.engine_id)):
            engine_ips[engine].add(observation.ip)
    return (
        frozenset(mac for mac, ips in mac_ips.items() if len(ips) > 1),
        frozenset(engine for engine, ips in engine_ips.items() if len(ips) > 1),
    )
