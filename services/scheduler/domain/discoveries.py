"""Discoveries: what a collector scans, how hard, and where it runs.

A discovery names its targets (CIDRs, address ranges, host names), what to leave out,
ports and probes, the names of the credentials to use (kept by the registry; only names
live here), where the SNMP and SSH probes connect when not on their standard ports (0 for
161 and 22), and exactly one place to run: a collector by name, or a zone (then any
enabled collector of the zone may take a run, and the database gives it to one).

`validate_discovery` turns an admin's request into a stored discovery: zero limits become
the defaults, and anything a collector could not act on is refused here with a message
naming the field, not discovered later on a remote site. Targets, probes, ports and
rates are checked by the code the collector runs (`outpost.targets`,
`outpost.scan_limits`): a /8 is refused here, with its address count and the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from outpost import errors, scan_limits
from outpost import targets as targets_rules
from outpost.numbers import is_ascii_digits

PROBES = scan_limits.PROBES
DEFAULT_CONCURRENCY = 256
DEFAULT_TIMEOUT_MS = 1000
DEFAULT_DEADLINE_SECONDS = 3600
MAX_CONCURRENCY = scan_limits.MAX_CONCURRENCY
MAX_TIMEOUT_MS = scan_limits.MAX_TIMEOUT_MS
MAX_DEADLINE_SECONDS = scan_limits.MAX_DEADLINE_SECONDS
MAX_TARGETS = targets_rules.MAX_TARGET_ITEMS
MAX_TEXT_CHARS = 256

MAX_NAME_CHARS = 128
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Discovery:
    name: str
    targets: tuple[str, ...]
    collector: str = ""
    zone: str = ""
    exclusions: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    probes: tuple[str, ...] = ()
    snmp_credential: str = ""
    ssh_credential: str = ""
    concurrency: int = DEFAULT_CONCURRENCY
    rate_per_second: int = 0
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    deadline_seconds: int = DEFAULT_DEADLINE_SECONDS
    dns_resolver: str = ""
    snmp_port: int = 0  # 0 = the standard 161
    ssh_port: int = 0  # 0 = the standard 22
    created_at: datetime | None = field(default=None, compare=False)


def validate_name(kind: str, name: str) -> str:
    """A discovery or schedule name: letters, digits, '.', '_' and '-', at most 128.

    The length is checked before anything quotes the name, and a refusal quotes it
    briefly: a 10,000-character name gets the rule, not a transport error.
    """
    name = name.strip()
    if not name:
        raise errors.InvalidArgument(f"a {kind} name is required")
    if len(name) > MAX_NAME_CHARS or not NAME_PATTERN.match(name):
        raise errors.InvalidArgument(
            f"{kind} name {errors.brief(name)} is not allowed: use letters, digits, '.', '_' and '-' "
            f"(starting with a letter or digit), at most {MAX_NAME_CHARS} characters"
        )
    return name


def validate_discovery(requested: Discovery, now: datetime) -> Discovery:
    """The discovery to store, with defaults applied; `InvalidArgument` names the bad field."""
    name = validate_name("discovery", requested.name)
    collector, zone = requested.collector.strip(), requested.zone.strip()
    if bool(collector) == bool(zone):
        raise errors.InvalidArgument(
            f"discovery {name!r} must name exactly one of collector or zone (where it runs), "
            f"got {'both' if collector else 'neither'}"
        )
    for label, text in (("collector", collector), ("zone", zone)):
        _check_text(label, text)
    try:
        target_list, exclusion_list = targets_rules.check_target_lists(
            [t for t in requested.targets if t.strip()], [t for t in requested.exclusions if t.strip()]
        )
        probes = scan_limits.check_probes(requested.probes)
        ports = scan_limits.check_ports(requested.ports, probes)
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument(f"discovery {name!r}: {exc}") from None
    targets, exclusions = tuple(target_list), tuple(exclusion_list)
    for label, text in (("snmp_credential", requested.snmp_credential), ("ssh_credential", requested.ssh_credential)):
        _check_text(label, text.strip())
    dns_resolver = requested.dns_resolver.strip()
    if dns_resolver and not _is_host_port(dns_resolver):
        raise errors.InvalidArgument(f"dns_resolver must be host:port, got {errors.brief(dns_resolver)}")
    for label, port in (("snmp_port", requested.snmp_port), ("ssh_port", requested.ssh_port)):
        if not 0 <= port <= 65_535:
            raise errors.InvalidArgument(f"{label} must be between 1 and 65535 (0 for the standard port), got {port}")
    limits = {
        "concurrency": _limit("concurrency", requested.concurrency, DEFAULT_CONCURRENCY, MAX_CONCURRENCY),
        "rate_per_second": _limit("rate_per_second", requested.rate_per_second, 0, scan_limits.MAX_RATE_PER_SECOND),
        "timeout_ms": _limit("timeout_ms", requested.timeout_ms, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS),
        "deadline_seconds": _limit(
            "deadline_seconds", requested.deadline_seconds, DEFAULT_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS
        ),
    }
    scan_limits.check_rates(**limits)
    return replace(
        requested,
        name=name,
        collector=collector,
        zone=zone,
        targets=targets,
        exclusions=exclusions,
        ports=ports,
        probes=probes,
        snmp_credential=requested.snmp_credential.strip(),
        ssh_credential=requested.ssh_credential.strip(),
        **limits,
        dns_resolver=dns_resolver,
        created_at=now,
    )


def snapshot(discovery: Discovery) -> dict[str, Any]:
    """The discovery as JSON-ready data, stored with each run it creates."""
    return {
        "name": discovery.name,
        "targets": list(discovery.targets),
        "exclusions": list(discovery.exclusions),
        "ports": list(discovery.ports),
        "probes": list(discovery.probes),
        "snmp_credential": discovery.snmp_credential,
        "ssh_credential": discovery.ssh_credential,
        "collector": discovery.collector,
        "zone": discovery.zone,
        "concurrency": discovery.concurrency,
        "rate_per_second": discovery.rate_per_second,
        "timeout_ms": discovery.timeout_ms,
        "deadline_seconds": discovery.deadline_seconds,
        "dns_resolver": discovery.dns_resolver,
        "snmp_port": discovery.snmp_port,
        "ssh_port": discovery.ssh_port,
        "created_at": discovery.created_at.isoformat() if discovery.created_at else None,
    }


def from_snapshot(data: dict[str, Any]) -> Discovery:
    created = data.get("created_at")
    return Discovery(
        name=str(data.get("name", "")),
        targets=tuple(data.get("targets", ())),
        exclusions=tuple(data.get("exclusions", ())),
        ports=tuple(int(p) for p in data.get("ports", ())),
        probes=tuple(data.get("probes", ())),
        snmp_credential=str(data.get("snmp_credential", "")),
        ssh_credential=str(data.get("ssh_credential", "")),
        collector=str(data.get("collector", "")),
        zone=str(data.get("zone", "")),
        concurrency=int(data.get("concurrency", DEFAULT_CONCURRENCY)),
        rate_per_second=int(data.get("rate_per_second", 0)),
        timeout_ms=int(data.get("timeout_ms", DEFAULT_TIMEOUT_MS)),
        deadline_seconds=int(data.get("deadline_seconds", DEFAULT_DEADLINE_SECONDS)),
        dns_resolver=str(data.get("dns_resolver", "")),
        # Runs created before the probe ports existed have none in their snapshot.
        snmp_port=int(data.get("snmp_port", 0)),
        ssh_port=int(data.get("ssh_port", 0)),
        created_at=datetime.fromisoformat(created) if created else None,
    )


def not_found(name: str) -> errors.NotFound:
    return errors.NotFound(f"no discovery named '{name}'; `outpostctl discoveries list` shows them")


def _limit(label: str, value: int, default: int, maximum: int) -> int:
    if value == 0:
        return default
    if not 0 < value <= maximum:
        raise errors.InvalidArgument(f"{label} must be between 1 and {maximum} (0 for the default), got {value}")
    return value


def _check_text(label: str, text: str) -> None:
    if len(text) > MAX_TEXT_CHARS or any(not c.isprintable() for c in text):
        raise errors.InvalidArgument(f"{label} must be printable text of at most {MAX_TEXT_CHARS} characters")


def _is_host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and is_ascii_digits(port) and 0 < int(port) <= 65_535)
