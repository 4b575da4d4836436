"""Targets and exclusions: parse them, count them, and walk the addresses lazily.

A target is a CIDR ("10.0.0.0/24", every address in it, network and broadcast
included, as nmap does), a range ("10.0.0.5-10.0.0.20", or "10.0.0.5-20" for the last
octet; IPv6 ranges take two full addresses), a single address, or a host name. Host
names are resolved by the caller (this module does no I/O) and handed in as addresses.

Every target becomes an interval of integers per address family. The intervals are
sorted and merged, the exclusions are cut out of them, and what is left is a short list
of disjoint intervals: the count is exact before the first probe, a duplicated or
overlapping target is scanned once, and iteration builds one address at a time (a /16
costs a few intervals, not a list of 65,536 strings).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from outpost.errors import InvalidArgument

MAX_TARGETS = 1_048_576

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LAST_OCTET = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,3})$")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class AddressRange:
    """first..last inclusive, both of one family."""

    first: IPAddress
    last: IPAddress

    @property
    def version(self) -> int:
        return self.first.version


@dataclass(frozen=True)
class HostName:
    name: str


TargetSpec = AddressRange | HostName


def parse_target(text: str) -> TargetSpec:
    """One target or exclusion as the operator wrote it; InvalidArgument if it is none."""
    spec = text.strip()
    if not spec:
        raise InvalidArgument("empty target")
    if "%" in spec:
        raise InvalidArgument(f"target {text!r}: scoped IPv6 addresses (with %zone) are not supported")
    if "/" in spec:
        try:
            network = ipaddress.ip_network(spec, strict=False)
        except ValueError as exc:
            raise InvalidArgument(f"target {text!r} is not a valid CIDR: {exc}") from exc
        return AddressRange(network.network_address, network.broadcast_address)
    if spec.count("-") == 1:
        address_range = _parse_range(spec, text)
        if address_range is not None:
            return address_range
    try:
        address = ipaddress.ip_address(spec)
    except ValueError:
        return HostName(_parse_host_name(spec, text))
    return AddressRange(address, address)


def _parse_range(spec: str, text: str) -> AddressRange | None:
    """A range, or None when `spec` is not one (a host name with a dash)."""
    last_octet = _LAST_OCTET.match(spec)
    if last_octet:
        first = _address(last_octet.group(1), text)
        octet = int(last_octet.group(2))
        if octet > 255:
            raise InvalidArgument(f"target {text!r}: the range ends past .255")
        last = ipaddress.ip_address(f"{last_octet.group(1).rsplit('.', 1)[0]}.{octet}")
        return _checked_range(first, last, text)
    left, right = spec.split("-")
    try:
        first = ipaddress.ip_address(left)
    except ValueError:
        return None
    return _checked_range(first, _address(right, text), text)


def _address(value: str, text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError as exc:
        raise InvalidArgument(f"target {text!r}: {value!r} is not an IP address") from exc


def _checked_range(first: IPAddress, last: IPAddress, text: str) -> AddressRange:
    if first.version != last.version:
        raise InvalidArgument(f"target {text!r} mixes IPv4 and IPv6")
    if int(last) < int(first):
        raise InvalidArgument(f"target {text!r} ends before it starts")
    return AddressRange(first, last)


def _parse_host_name(spec: str, text: str) -> str:
    name = spec.rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidArgument(f"target {text!r} is neither an IP address, a CIDR, a range nor a host name")
    if all(label.isdigit() for label in labels):
        raise InvalidArgument(f"target {text!r} is not a valid IP address")
    return name.lower()


def host_names(specs: Iterable[TargetSpec]) -> list[str]:
    """The host names among `specs`, each once, in order: what the caller must resolve."""
    return list(dict.fromkeys(spec.name for spec in specs if isinstance(spec, HostName)))


Interval = tuple[int, int, int]  # (ip version, first, last) inclusive


class TargetSet:
    """The addresses to scan: targets minus exclusions, each once, in ascending order."""

    def __init__(self, intervals: Sequence[Interval]) -> None:
        self._intervals = tuple(intervals)
        self._count = sum(last - first + 1 for _, first, last in self._intervals)

    @classmethod
    def build(
        cls,
        targets: Iterable[TargetSpec],
        exclusions: Iterable[TargetSpec] = (),
        resolved: Mapping[str, Sequence[IPAddress]] | None = None,
        *,
        limit: int = MAX_TARGETS,
    ) -> TargetSet:
        """Merge `targets`, cut out `exclusions`; host names are looked up in `resolved`.

        A host name missing from `resolved` (it did not resolve) is skipped. Raises
        InvalidArgument when more than `limit` addresses remain.
        """
        resolved = resolved or {}
        wanted = _merge(_intervals(targets, resolved))
        unwanted = _merge(_intervals(exclusions, resolved))
        remaining = _subtract(wanted, unwanted)
        target_set = cls(remaining)
        if target_set.count > limit:
            raise InvalidArgument(
                f"the targets expand to {target_set.count:,} addresses; a discovery scans at most {limit:,} "
                "(split it, or narrow the CIDRs)"
            )
        return target_set

    @property
    def count(self) -> int:
        """How many addresses (exact, and possibly huge before `build` checks the limit)."""
        return self._count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for version, first, last in self._intervals:
            factory = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
            for value in range(first, last + 1):
                yield str(factory(value))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        ip = ipaddress.ip_address(address)
        value = int(ip)
        return any(v == ip.version and first <= value <= last for v, first, last in self._intervals)

    @property
    def intervals(self) -> tuple[Interval, ...]:
        return self._intervals


def _intervals(specs: Iterable[TargetSpec], resolved: Mapping[str, Sequence[IPAddress]]) -> Iterator[Interval]:
    for spec in specs:
        if isinstance(spec, HostName):
            for address in resolved.get(spec.name, ()):
                yield (address.version, int(address), int(address))
        else:
            yield (spec.version, int(spec.first), int(spec.last))


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for version, first, last in sorted(intervals):
        if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
            previous = merged[-1]
            merged[-1] = (version, previous[1], max(previous[2], last))
        else:
            merged.append((version, first, last))
    return merged


def _subtract(wanted: list[Interval], unwanted: list[Interval]) -> list[Interval]:
    """`wanted` minus `unwanted`, both sorted and merged."""
    result: list[Interval] = []
    for version, first, last in wanted:
        start = first
        for cut_version, cut_first, cut_last in unwanted:
            if cut_version != version or cut_last < start:
                continue
            if cut_first > last:
                break
            if cut_first > start:
                result.append((version, start, cut_first - 1))
            start = cut_last + 1
            if start > last:
                break
        if start <= last:
            result.append((version, start, last))
    return result
