"""What a discovery run may ask of a collector: probes, ports and rates, checked in one place.

The scheduler checks a discovery with these rules when it is created, and the collector
checks every run's plan with the same ones, so a discovery the scheduler accepted is
never refused on a remote site at run time (targets are `outpost.targets`). Each check
raises `InvalidArgument` naming the field and the bound.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from outpost.errors import InvalidArgument

PROBES = ("icmp", "tcp", "dns", "banners", "snmp", "ssh")
DEFAULT_PROBES = ("icmp", "tcp", "dns", "banners")
"""What a discovery with no probes listed runs (the gateway fills them in)."""
MAX_PORT = 65_535
MAX_CONCURRENCY = 65_535
MAX_RATE_PER_SECOND = 1_000_000
MAX_TIMEOUT_MS = 600_000
MAX_DEADLINE_SECONDS = 7 * 86_400


def check_probes(probes: Iterable[str]) -> tuple[str, ...]:
    """Known probe names, lowercased, each once; () means `DEFAULT_PROBES`."""
    wanted = tuple(dict.fromkeys(p.strip().lower() for p in probes if p.strip()))
    unknown = [p for p in wanted if p not in PROBES]
    if unknown:
        raise InvalidArgument(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBES)}")
    return wanted


def check_ports(ports: Iterable[int], probes: Collection[str], *, empty_means_default: bool = True) -> tuple[int, ...]:
    """Ports sorted, each once, 1..65535; the tcp probe (on by default) needs at least one.

    `empty_means_default`: no probes listed means `DEFAULT_PROBES` (a discovery); a run's
    plan lists the probes it runs.
    """
    checked = tuple(sorted(set(ports)))
    outside = [p for p in checked if not 1 <= p <= MAX_PORT]
    if outside:
        raise InvalidArgument(f"port {outside[0]} is outside 1-{MAX_PORT}")
    if not checked and "tcp" in (probes or (DEFAULT_PROBES if empty_means_default else ())):
        raise InvalidArgument("the tcp probe needs at least one port (it is on unless --probes leaves it out)")
    return checked


def check_rates(*, concurrency: int, rate_per_second: int, timeout_ms: int, deadline_seconds: int) -> None:
    """Each within its bound; 0 for rate_per_second means no limit. Defaults are applied before."""
    for label, value, low, high in (
        ("concurrency", concurrency, 1, MAX_CONCURRENCY),
        ("rate_per_second", rate_per_second, 0, MAX_RATE_PER_SECOND),
        ("timeout_ms", timeout_ms, 1, MAX_TIMEOUT_MS),
        ("deadline_seconds", deadline_seconds, 1, MAX_DEADLINE_SECONDS),
    ):
        if not low <= value <= high:
            raise InvalidArgument(f"{label} must be between {low} and {high:,}, got {value:,}")
