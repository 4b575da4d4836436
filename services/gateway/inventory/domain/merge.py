"""Merge one observation into one device: the new state and the fields that changed.

The rules, in the order an operator asks about them:

- **First sighting** creates the device and records exactly one change, "created" (new
  value: the IP). What the first scan found is the device's starting state, not history.
- **Unknown is not empty.** An empty banner, service, fact or detail, a missing SNMP or
  audit part, or an empty MAC list leaves the stored value alone: proto3 cannot tell "not
  measured" from "empty" for them, and a probe that did not run must not wipe what an
  earlier one found. Where the contract can tell (field presence), *measured empty* is a
  change: a hostname measured "" (NXDOMAIN) records `hostname old -> ""`, a page read
  without a title records `port.80.http.title old -> ""`; not measured (None) leaves them
  alone. One more exception: a source (SNMP, audit) that lists interfaces lists all of
  them, and an interface it no longer lists is recorded as removed.
- **Only a port probed in the run changes state.** A port the observation lists changes to
  the state it lists: open, filtered (no answer in time) or closed. A stored open or
  filtered TCP port that is in the job run's scanned ports but not listed was refused:
  "port.N" open -> closed, filtered -> closed. A port the run did not scan (or of another
  protocol, or any port when the scanned list is unknown) stays as it was. A device
  already seen in this job run (an earlier batch of the same run) is not closed by
  absence: one run reports a device once, and a second report in the same run is a
  fragment, not a full picture.
- **A filtered port keeps what it said.** Filtered means nothing answered, so nothing was
  learned about its service: its service, banner and details stay as they were.
- **Volatile facts** (uptimes) are stored every time but recorded only when they go down:
  that is a reboot, the rest is the clock.
- **A new port** records "port.N" "" -> open (its banner and details come with it) or
  "" -> filtered; a port that opens again records closed -> open (or filtered -> open)
  and any field that differs. A port never seen open or filtered and now closed is not
  stored: "every port a device ever had open or filtered" is what the inventory lists.
- **Details belong to their service.** When a port's service changes (both known), the
  old service's banner and the detail families the new one does not report go with it,
  each recorded as old -> "" (an SSH server on port 80 keeps no `http.title` of the web
  server that was there; `http` -> `http-alt` keeps the `http.*` it did not re-read).

`merge` is pure and deterministic given `new_id`: merging the same observation twice
records no change the second time (tests/unit/inventory/test_merge.py checks this with
hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from services.gateway.inventory.domain.device import (
    CLOSED,
    CREATED,
    FILTERED,
    OPEN,
    Change,
    DeviceRecord,
    PortRecord,
    Sighting,
    new_device_id,
    port_field,
)
from services.gateway.inventory.domain.observation import (
    TCP,
    VOLATILE_FACTS,
    DeviceObservation,
    PortKey,
    PortObservation,
    normalize_engine_id,
    normalize_macs,
    observed_facts,
    port_banner,
    port_cleared_details,
    port_details,
    reported_interface_prefixes,
)


def merge(
    existing: DeviceRecord | None,
    observation: DeviceObservation,
    sighting: Sighting,
    *,
    new_id: Callable[[], str] = new_device_id,
) -> tuple[DeviceRecord, list[Change]]:
    """The device after `observation`, and the changes it shows (see the module docstring)."""
    at = sighting.observed_at
    seen_ports = _collapse(observation.ports)
    macs = normalize_macs(observation.mac_addresses)
    engine_id = normalize_engine_id(observation.snmp.engine_id) if observation.snmp is not None else ""
    if existing is None:
        record = DeviceRecord(
            id=new_id(),
            zone=sighting.zone,
            ip=observation.ip,
            hostname=observation.hostname or "",
            mac_addresses=macs,
            snmp_engine_id=engine_id,
            facts=observed_facts(observation),
            ports={key: _new_port(key, port, at) for key, port in seen_ports.items() if port.state != CLOSED},
            first_seen=at,
            last_seen=at,
            last_collector=sighting.collector,
            last_job_run_id=sighting.job_run_id,
        )
        return record, [Change(record.id, CREATED, "", observation.ip, at, sighting.job_run_id)]

    log = _ChangeLog(existing.id, sighting)
    if existing.ip != observation.ip:
        log.add("ip", existing.ip, observation.ip)
    hostname = log.measured("hostname", existing.hostname, observation.hostname)
    if macs and macs != existing.mac_addresses:
        log.add("mac_addresses", ",".join(existing.mac_addresses), ",".join(macs))
    snmp_engine_id = log.known("snmp_engine_id", existing.snmp_engine_id, engine_id)
    facts = _merge_facts(existing.facts, observation, log)
    ports = _merge_ports(existing, seen_ports, sighting, log)
    record = replace(
        existing,
        ip=observation.ip,
        hostname=hostname,
        mac_addresses=macs or existing.mac_addresses,
        snmp_engine_id=snmp_engine_id,
        facts=facts,
        ports=ports,
        last_seen=max(existing.last_seen, at),
        last_collector=sighting.collector,
        last_job_run_id=sighting.job_run_id,
    )
    return record, log.changes


def is_stale(existing: DeviceRecord, sighting: Sighting) -> bool:
    """An observation older than what another job run already recorded: it changes nothing.

    A spool can deliver an old run's batch after a newer run's (a collector that was offline
    for a while); applying it would record the newer state being undone. Both times are
    server time (`domain.clock.server_time`: the collector's clock corrected by the skew
    the gateway measured, never later than the batch's arrival), so a collector whose clock
    is ahead cannot freeze a device, nor one behind have its results dropped. The caller
    counts every observation skipped here (`BatchPlan.skipped`): never silently.
    """
    return existing.last_job_run_id != sighting.job_run_id and existing.last_seen > sighting.observed_at


@dataclass(frozen=True)
class _SeenPort:
    state: str
    service: str
    banner: str
    details: Mapping[str, str]
    cleared: frozenset[str]
    """Details measured empty (a page without a title): their stored values go."""


_STATE_STRENGTH = {FILTERED: 0, CLOSED: 1, OPEN: 2}
"""A port listed twice in different states: an answer beats silence, a connection beats a refusal."""


def _collapse(ports: Iterable[PortObservation]) -> dict[PortKey, _SeenPort]:
    """One entry per port; a port listed twice keeps the later non-empty values.

    Only an open listing says anything about the service: a filtered or closed one brings
    its state alone.
    """
    seen: dict[PortKey, _SeenPort] = {}
    for port in ports:
        before = seen.get(port.key)
        state = port.state
        if before is not None and _STATE_STRENGTH[before.state] > _STATE_STRENGTH[state]:
            state = before.state
        if port.state != OPEN:
            seen[port.key] = (
                _SeenPort(state, "", "", {}, frozenset()) if before is None else replace(before, state=state)
            )
            continue
        before = before or _SeenPort(state, "", "", {}, frozenset())
        details = {**before.details, **port_details(port)}
        seen[port.key] = _SeenPort(
            state=state,
            service=port.service or before.service,
            banner=port_banner(port) or before.banner,
            details=details,
            cleared=(before.cleared | port_cleared_details(port)) - details.keys(),
        )
    return seen


def _new_port(key: PortKey, port: _SeenPort, at: datetime) -> PortRecord:
    protocol, number = key
    return PortRecord(
        protocol=protocol,
        port=number,
        service=port.service,
        banner=port.banner,
        details=dict(port.details),
        first_seen=at,
        last_seen=at,
        state=port.state,
    )


class _ChangeLog:
    """The changes of one device in one merge, stamped with the sighting's time and run."""

    def __init__(self, device_id: str, sighting: Sighting) -> None:
        self._device_id = device_id
        self._sighting = sighting
        self.changes: list[Change] = []

    def add(self, field: str, old: str, new: str) -> None:
        self.changes.append(
            Change(self._device_id, field, old, new, self._sighting.observed_at, self._sighting.job_run_id)
        )

    def measured(self, field: str, old: str, new: str | None) -> str:
        """`new` if it was measured (not None; "" is a measured empty) and differs, else `old`."""
        if new is None or new == old:
            return old
        self.add(field, old, new)
        return new

    def known(self, field: str, old: str, new: str) -> str:
        """`new` if it is known and differs (recording the change), else `old`."""
        if not new or new == old:
            return old
        self.add(field, old, new)
        return new


def _merge_facts(stored: Mapping[str, str], observation: DeviceObservation, log: _ChangeLog) -> dict[str, str]:
    seen = observed_facts(observation)
    facts = dict(stored)
    for prefix in reported_interface_prefixes(observation):
        for key in sorted(k for k in stored if k.startswith(prefix) and k not in seen):
            log.add(f"facts.{key}", facts.pop(key), "")
    for key, value in seen.items():
        old = facts.get(key, "")
        if value == old:
            continue
        facts[key] = value
        if key in VOLATILE_FACTS and old and not _went_down(old, value):
            continue
        log.add(f"facts.{key}", old, value)
    return facts


def _went_down(old: str, new: str) -> bool:
    try:
        return int(new) < int(old)
    except ValueError:
        return True


def _merge_ports(
    existing: DeviceRecord, seen_ports: Mapping[PortKey, _SeenPort], sighting: Sighting, log: _ChangeLog
) -> dict[PortKey, PortRecord]:
    at = sighting.observed_at
    ports = dict(existing.ports)
    for key, seen in seen_ports.items():
        old = ports.get(key)
        if old is None:
            if seen.state != CLOSED:
                log.add(port_field(key), "", seen.state)
                ports[key] = _new_port(key, seen, at)
            continue
        if old.state != seen.state:
            log.add(port_field(key), old.state, seen.state)
        if seen.state == OPEN:
            ports[key] = _merge_open_port(key, old, seen, at, log)
        elif seen.state == FILTERED:
            # Nothing answered: what the port said about itself while open still stands.
            ports[key] = replace(old, state=FILTERED, last_seen=max(old.last_seen, at))
        else:
            ports[key] = replace(old, state=CLOSED)
    if existing.last_job_run_id == sighting.job_run_id:
        return ports  # a second report in the same run is not closed by absence
    for key, old in existing.ports.items():
        protocol, number = key
        if old.state != CLOSED and protocol == TCP and number in sighting.scanned_ports and key not in seen_ports:
            log.add(port_field(key), old.state, CLOSED)
            ports[key] = replace(old, state=CLOSED)
    return ports


def _merge_open_port(key: PortKey, old: PortRecord, seen: _SeenPort, at: datetime, log: _ChangeLog) -> PortRecord:
    """A stored port found open: what answered on it now, over what it said before."""
    service = log.known(port_field(key, "service"), old.service, seen.service)
    banner = log.known(port_field(key, "banner"), old.banner, seen.banner)
    details = dict(old.details)
    if service != old.service and old.service:
        # Another service answers on this port now: what the old one said about itself
        # (its banner, its HTTP title, its host key) is no longer true of the port.
        banner = seen.banner
        if old.banner and not seen.banner:
            log.add(port_field(key, "banner"), old.banner, "")
        # Details come in families ("http.title", "ssh.host_key_type"); a family the new
        # service does not report at all was the old service's.
        families = {name.split(".", 1)[0] for name in seen.details}
        details = {}
        for name, value in sorted(old.details.items()):
            if name.split(".", 1)[0] in families:
                details[name] = value
            else:
                log.add(port_field(key, name), value, "")
    for name, value in seen.details.items():
        details[name] = log.known(port_field(key, name), old.details.get(name, ""), value)
    for name in sorted(seen.cleared):
        if details.get(name):
            log.add(port_field(key, name), details.pop(name), "")
    return replace(
        old,
        service=service,
        banner=banner,
        details=details,
        last_seen=max(old.last_seen, at),
        state=OPEN,
    )
