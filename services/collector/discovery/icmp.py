"""The ICMP echo probe (icmplib), and whether this process may send ICMP at all.

Three ways, decided once per run: a raw socket when the process holds CAP_NET_RAW
(privileged: root, or any user given the capability, e.g. the systemd unit's ICMP drop-in
`AmbientCapabilities=CAP_NET_RAW`); an unprivileged "ping socket" when the kernel allows
this process's group (`net.ipv4.ping_group_range`); otherwise no ICMP, and each reported
host carries the note `NOT_PERMITTED_NOTE` while liveness comes from the other probes. The
capability, not the uid, decides: root without CAP_NET_RAW (a container, a unit with an
empty CapabilityBoundingSet=) would be refused a raw socket. A raw socket that is refused
at run time all the same (a seccomp or LSM policy) falls back the same way.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from icmplib import async_ping  # type: ignore[import-untyped]
from icmplib.exceptions import ICMPLibError, SocketPermissionError  # type: ignore[import-untyped]

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
PROC_STATUS = Path("/proc/self/status")
CAP_NET_RAW = 13  # linux/capability.h
NOT_PERMITTED_NOTE = "icmp: not permitted (needs root or ping_group_range); liveness from TCP"


class IcmpAccess(Enum):
    PRIVILEGED = "privileged"
    UNPRIVILEGED = "unprivileged"
    NOT_PERMITTED = "not_permitted"


def icmp_access(net_raw: bool, groups: set[int], ping_group_range: tuple[int, int] | None) -> IcmpAccess:
    """How a process with (or without) CAP_NET_RAW and these groups may ping (pure, for tests)."""
    if net_raw:
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


def has_net_raw(status: Path = PROC_STATUS) -> bool:
    """True when CAP_NET_RAW is in this process's effective capabilities (`CapEff:` of /proc/self/status)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_RAW & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0  # no /proc: assume the classic rule


def current_groups() -> set[int]:
    return {os.getegid(), *os.getgroups()}


def current_icmp_access() -> IcmpAccess:
    return icmp_access(has_net_raw(), current_groups(), read_ping_group_range())


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
