"""Targets and exclusions: the one parser the CLI, the scheduler and the collector share.

A target is a CIDR ("10.0.0.0/24", every address in it, network and broadcast
included, as nmap does), a range ("10.0.0.5-10.0.0.20", or "10.0.0.5-20" for the last
octet; IPv6 ranges take two full addresses), a single address, or a host name. This is
exactly the table in docs/discovery.md; `tests/unit/lib/test_targets.py` lists each row.
Host names are resolved by the collector when a run starts (this module does no I/O)
and handed in as addresses.

IPv4-mapped IPv6 addresses (`::ffff:127.0.50.1`, `::ffff:127.0.50.0/120`) are the IPv4
addresses they carry: the same host, so they are parsed as IPv4 and never become a
second device.

Every target becomes an interval of integers per address family. The intervals are
sorted and merged, the exclusions are cut out of them, and what is left is a short list
of disjoint intervals: the count is exact before the first probe, a duplicated or
overlapping target is scanned once, and iteration builds one address at a time (a /16
costs a few intervals, not a list of 65,536 strings).

The limits live here once: `MAX_TARGETS` addresses per run (the collector refuses more
at run time, the scheduler at create time, with the same message), `MAX_TARGET_ITEMS`
targets and exclusions per discovery, `MAX_TARGET_CHARS` per item.

Two entry points: `parse_target` reads what a run was given (a CIDR with host bits set
means its network, as nmap reads it, so discoveries stored before `canonical_target`
existed still run); `canonical_target` is what create time accepts and stores: the same
forms in their canonical text, and a CIDR with host bits set refused, since the scan
would not cover what it seems to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from outpost.errors import InvalidArgument

MAX_TARGETS = 1_048_576
"""Addresses one run scans, after exclusions (host names count once resolved)."""
MAX_TARGET_ITEMS = 10_000
"""Targets and exclusions of one discovery, together."""
MAX_TARGET_CHARS = 256
"""Characters of one target or exclusion (a host name has at most 253)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORMS = "an address, a CIDR (10.0.0.0/24), a range (10.0.0.5-10.0.0.20 or 10.0.0.5-20) or a host name"

_LAST_OCTET = re.compile(r"^([0-9]{1,3}(?:\.[0-9]{1,3}){3})-([0-9]{1,3})$")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_MAPPED_PREFIX = 96  # ::ffff:0:0/96 holds the IPv4-mapped addresses


@dataclass(frozen=True)
class AddressRange:
    """first..last inclusive, both of one family; `network` when it was written as a CIDR."""

    first: IPAddress
    last: IPAddress
    network: IPNetwork | None = None

    @property
    def version(self) -> int:
        return self.first.version

    @property
    def count(self) -> int:
        return int(self.last) - int(self.first) + 1

    def text(self) -> str:
        """The canonical text: a CIDR, an address, or first-last."""
        if self.network is not None:
            return str(self.network)
        if self.first == self.last:
            return str(self.first)
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class HostName:
    name: str

    def text(self) -> str:
        return self.name


TargetSpec = AddressRange | HostName


def parse_target(text: str) -> TargetSpec:
    """One target or exclusion as the operator wrote it; InvalidArgument if it is none."""
    spec = text.strip()
    if not spec:
        raise InvalidArgument("empty target")
    if len(spec) > MAX_TARGET_CHARS:
        raise InvalidArgument(f"target {_shown(spec)} is longer than {MAX_TARGET_CHARS} characters")
    if not spec.isascii():
        raise InvalidArgument(f"target {_shown(spec)} is not {FORMS} (ASCII only)")
    if "%" in spec:
        raise InvalidArgument(f"target {text!r}: scoped IPv6 addresses (with %zone) are not supported")
    if "/" in spec:
        try:
            network = _unmapped_network(ipaddress.ip_network(spec, strict=False))
        except ValueError as exc:
            raise InvalidArgument(f"target {text!r} is not a valid CIDR: {exc}") from exc
        return AddressRange(network.network_address, network.broadcast_address, network)
    if spec.count("-") == 1:
        address_range = _parse_range(spec, text)
        if address_range is not None:
            return address_range
    try:
        address = _unmapped(ipaddress.ip_address(spec))
    except ValueError:
        return HostName(_parse_host_name(spec, text))
    return AddressRange(address, address)


def canonical_target(text: str) -> str:
    """`text` as create time stores it; InvalidArgument also for a CIDR with host bits set.

    "2001:DB8::/64" -> "2001:db8::/64", "10.0.0.5-20" -> "10.0.0.5-10.0.0.20",
    "::ffff:10.0.0.1" -> "10.0.0.1", "Core-SW1.Lab." -> "core-sw1.lab".
    """
    spec = parse_target(text)
    if isinstance(spec, AddressRange) and spec.network is not None:
        written = text.strip()
        address = _unmapped(ipaddress.ip_interface(written).ip)
        if address != spec.network.network_address:
            raise InvalidArgument(f"target {written!r} has host bits set: did you mean {spec.network}?")
    return spec.text()


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(network: IPNetwork) -> IPNetwork:
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.prefixlen >= _MAPPED_PREFIX
        and network.network_address.ipv4_mapped is not None
    ):
        return ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - _MAPPED_PREFIX))
    return network


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
        first = _unmapped(ipaddress.ip_address(left))
    except ValueError:
        return None
    return _checked_range(first, _address(right, text), text)


def _address(value: str, text: str) -> IPAddress:
    try:
        return _unmapped(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InvalidArgument(f"target {text!r}: {value!r} is not an IP address") from exc


def _checked_range(first: IPAddress, last: IPAddress, text: str) -> AddressRange:
    if first.version != last.version:
        raise InvalidArgument(f"target {text!r} mixes IPv4 and IPv6")
    if int(last) < int(first):
        raise InvalidArgument(f"target {text!r} ends before it starts: write {last}-{first}")
    return AddressRange(first, last)


def _parse_host_name(spec: str, text: str) -> str:
    name = spec.rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidArgument(f"target {text!r} is not {FORMS}")
    if all(label.isdigit() for label in labels):
        raise InvalidArgument(f"target {text!r} is not a valid IP address")
    return name.lower()


def _shown(text: str, limit: int = 40) -> str:
    """A long or odd input quoted briefly: an error message never echoes all of it."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def host_names(specs: Iterable[TargetSpec]) -> list[str]:
    """The host names among `specs`, each once, in order: what the caller must resolve."""
    return list(dict.fromkeys(spec.name for spec in specs if isinstance(spec, HostName)))


def check_target_lists(targets: Sequence[str], exclusions: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Create-time check of a discovery's lists: canonical texts, within every limit.

    Raises InvalidArgument naming the list ("target"/"exclusion") and the item, or the
    expansion count and the limit; host names count as nothing here (they are resolved
    when a run starts, and the collector applies the limit again then).
    """
    if not targets:
        raise InvalidArgument("at least one target is needed (" + FORMS + ")")
    if len(targets) + len(exclusions) > MAX_TARGET_ITEMS:
        raise InvalidArgument(
            f"{len(targets) + len(exclusions):,} targets and exclusions; a discovery takes at most "
            f"{MAX_TARGET_ITEMS:,} together (use CIDRs or ranges)"
        )
    canonical: dict[str, list[str]] = {"target": [], "exclusion": []}
    for label, values in (("target", targets), ("exclusion", exclusions)):
        for value in values:
            try:
                canonical[label].append(canonical_target(value))
            except InvalidArgument as exc:
                message = str(exc)
                raise InvalidArgument(message.replace("target", label, 1) if label != "target" else message) from None
    wanted, unwanted = canonical["target"], canonical["exclusion"]
    TargetSet.build([parse_target(t) for t in wanted], [parse_target(t) for t in unwanted])
    return list(dict.fromkeys(wanted)), list(dict.fromkeys(unwanted))


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
        ip = _unmapped(ipaddress.ip_address(address))
        value = int(ip)
        return any(v == ip.version and first <= value <= last for v, first, last in self._intervals)

    @property
    def intervals(self) -> tuple[Interval, ...]:
        return self._intervals


def _intervals(specs: Iterable[TargetSpec], resolved: Mapping[str, Sequence[IPAddress]]) -> Iterator[Interval]:
    for spec in specs:
        if isinstance(spec, HostName):
            for found in resolved.get(spec.name, ()):
                address = _unmapped(found)
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
