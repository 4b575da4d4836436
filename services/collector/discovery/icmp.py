"""The ICMP echo probe (icmplib), and whether this process may send ICMP at all.

Three ways, decided once per run: a raw socket when running as root (privileged); an
unprivileged "ping socket" when the kernel allows this process's group
(`net.ipv4.ping_group_range`); otherwise no ICMP, and each reported host carries the
note `NOT_PERMITTED_NOTE` while liveness comes from the other probes. A raw socket that
is refused at run time (root without CAP_NET_RAW, in a container) falls back the same way.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from icmplib import async_ping  # type: ignore[import-untyped]
from icmplib.exceptions import ICMPLibError, SocketPermissionError  # type: ignore[import-untyped]

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
NOT_PERMITTED_NOTE = "icmp: not permitted (needs root or ping_group_range); liveness from TCP"


class IcmpAccess(Enum):
    PRIVILEGED = "privileged"
    UNPRIVILEGED = "unprivileged"
    NOT_PERMITTED = "not_permitted"


def icmp_access(euid: int, groups: set[int], ping_group_range: tuple[int, int] | None) -> IcmpAccess:
    """How a process with this uid and these groups may ping (pure, for tests)."""
    if euid == 0:
        return IcmpAccess.PRIVILEGED
    return unprivileged_access(groups, ping_group_range)


def unprivileged_access(groups: set[int], ping_group_range: tuple[int, int] | None) -> IcmpAccess:
    if ping_group_range is not None:
        low, high = ping_group_range
        if any(low <= group <= high for group in groups):
            return IcmpAccess.UNPRIVILEGED
    return IcmpAccess.NOT_PERMITTED


def read_ping_group_range(path: Path = PING_GROUP_RANGE) -> tuple[int, int] | None:
    try:
        low, high = path.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def current_groups() -> set[int]:
    return {os.getegid(), *os.getgroups()}


def current_icmp_access() -> IcmpAccess:
    return icmp_access(os.geteuid(), current_groups(), read_ping_group_range())


class IcmpNotPermitted(Exception):
    """The kernel refused the ICMP socket."""


async def ping(ip: str, timeout: float, access: IcmpAccess) -> float | None:
    """One echo request; the round trip in milliseconds, or None without a reply.

    Raises IcmpNotPermitted when the socket is refused, so the run can fall back.
    """
    if access is IcmpAccess.NOT_PERMITTED:
        raise IcmpNotPermitted(ip)
    try:
        host = await async_ping(ip, count=1, timeout=timeout, privileged=access is IcmpAccess.PRIVILEGED)
    except SocketPermissionError as exc:
        raise IcmpNotPermitted(ip) from exc
    except ICMPLibError:
        return None
    return float(host.min_rtt) if host.is_alive else None
