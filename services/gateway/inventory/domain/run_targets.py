"""Which addresses a job run looked at: its discovery's targets minus its exclusions.

The one place the gateway parses targets, with the parser the CLI, the scheduler and the
collector share (`outpost.targets`), so the gateway's idea of what a run covered is the
collector's idea of what it scanned. Host names are not resolved here: a device found through a host-name
target is never counted as missed by that run, and a run with a host-name *exclusion*
counts nobody (its excluded addresses are unknown, and counting them would retire devices
the run was told not to scan).
"""

from __future__ import annotations

from collections.abc import Iterable

from outpost.errors import InvalidArgument
from outpost.targets import HostName, TargetSet, parse_target

UNLIMITED = 2**128
"""Membership needs no expansion limit: a TargetSet is a few intervals whatever its size."""


def run_coverage(targets: Iterable[str], exclusions: Iterable[str]) -> TargetSet | None:
    """The addresses a run scanned, or None when that cannot be known (see the module docstring)."""
    try:
        wanted = [parse_target(t) for t in targets]
        unwanted = [parse_target(e) for e in exclusions]
    except InvalidArgument:
        return None
    if any(isinstance(spec, HostName) for spec in unwanted):
        return None
    return TargetSet.build(wanted, unwanted, limit=UNLIMITED)
