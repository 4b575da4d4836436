"""The shared target parser: every documented form, the limits, and expansion checked against a brute-force model."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outpost.errors import InvalidArgument
from outpost.targets import (
    MAX_TARGETS,
    AddressRange,
    HostName,
    TargetSet,
    canonical_target,
    check_target_lists,
    host_names,
    parse_target,
)

BASE = int(ipaddress.IPv4Address("10.0.0.0"))
SPAN = 1024  # targets inside 10.0.0.0/22 keep the brute-force model small


def _v4(offset: int) -> str:
    return str(ipaddress.IPv4Address(BASE + offset))


@st.composite
def v4_target(draw: st.DrawFn) -> tuple[str, set[int]]:
    """A target as text, and the addresses (as offsets from BASE) it must mean."""
    kind = draw(st.sampled_from(["single", "range", "octet", "cidr"]))
    if kind == "single":
        offset = draw(st.integers(0, SPAN - 1))
        return _v4(offset), {offset}
    if kind == "range":
        first = draw(st.integers(0, SPAN - 1))
        last = draw(st.integers(first, min(SPAN - 1, first + 300)))
        return f"{_v4(first)}-{_v4(last)}", set(range(first, last + 1))
    if kind == "octet":
        block = draw(st.integers(0, SPAN // 256 - 1)) * 256
        first = draw(st.integers(0, 255))
        last = draw(st.integers(first, 255))
        return f"{_v4(block + first)}-{last}", set(range(block + first, block + last + 1))
    prefix = draw(st.integers(23, 32))
    size = 2 ** (32 - prefix)
    inside = draw(st.integers(0, SPAN - 1))
    network = inside - inside % size
    return f"{_v4(inside)}/{prefix}", set(range(network, network + size))


@given(st.lists(v4_target(), min_size=1, max_size=6), st.lists(v4_target(), max_size=4))
def test_the_target_set_is_the_targets_minus_the_exclusions_each_once_in_order(
    targets: list[tuple[str, set[int]]], exclusions: list[tuple[str, set[int]]]
) -> None:
    expected = set().union(*(addresses for _, addresses in targets)) - set().union(
        *(addresses for _, addresses in exclusions)
    )
    target_set = TargetSet.build(
        [parse_target(text) for text, _ in targets], [parse_target(text) for text, _ in exclusions]
    )

    addresses = list(target_set)
    assert addresses == [_v4(offset) for offset in sorted(expected)]
    assert len(target_set) == len(expected)
    for offset in itertools.islice(expected, 20):
        assert _v4(offset) in target_set


@given(st.lists(v4_target(), min_size=1, max_size=6))
def test_intervals_are_sorted_disjoint_and_not_adjacent(targets: list[tuple[str, set[int]]]) -> None:
    intervals = TargetSet.build([parse_target(text) for text, _ in targets]).intervals

    for (_, first, last), (_, next_first, _) in itertools.pairwise(intervals):
        assert first <= last < next_first - 1


def test_a_slash_16_is_counted_without_building_its_addresses() -> None:
    target_set = TargetSet.build([parse_target("10.1.0.0/16")], [parse_target("10.1.2.0/24")])

    assert len(target_set) == 65536 - 256
    assert target_set.intervals == (
        (4, int(ipaddress.IPv4Address("10.1.0.0")), int(ipaddress.IPv4Address("10.1.1.255"))),
        (4, int(ipaddress.IPv4Address("10.1.3.0")), int(ipaddress.IPv4Address("10.1.255.255"))),
    )
    assert list(itertools.islice(target_set, 3)) == ["10.1.0.0", "10.1.0.1", "10.1.0.2"]


def test_more_than_the_limit_is_refused_with_a_clear_error() -> None:
    assert len(TargetSet.build([parse_target("10.0.0.0/12")])) == MAX_TARGETS
    with pytest.raises(InvalidArgument, match=r"2,097,152 addresses; a discovery scans at most 1,048,576"):
        TargetSet.build([parse_target("10.0.0.0/11")])
    with pytest.raises(InvalidArgument, match="at most"):
        TargetSet.build([parse_target("2001:db8::/64")])


def test_exclusions_count_before_the_limit() -> None:
    target_set = TargetSet.build([parse_target("10.0.0.0/11")], [parse_target("10.16.0.0/12")])
    assert len(target_set) == MAX_TARGETS


def test_ipv6_cidrs_ranges_and_singles() -> None:
    target_set = TargetSet.build(
        [parse_target("2001:db8::/126"), parse_target("2001:db8::10-2001:db8::11"), parse_target("::1")],
        [parse_target("2001:db8::1")],
    )
    assert list(target_set) == ["::1", "2001:db8::", "2001:db8::2", "2001:db8::3", "2001:db8::10", "2001:db8::11"]


def test_ipv4_comes_before_ipv6_and_families_do_not_merge() -> None:
    target_set = TargetSet.build([parse_target("::1"), parse_target("0.0.0.1")])
    assert list(target_set) == ["0.0.0.1", "::1"]


# Every form docs/discovery.md documents ("Targets and exclusions"), one row each, with
# the addresses it means and the canonical text create time stores.
DOCUMENTED_FORMS = [
    # (form, as written, first, last, canonical)
    ("CIDR", "10.0.0.0/24", "10.0.0.0", "10.0.0.255", "10.0.0.0/24"),
    ("CIDR (IPv6)", "2001:db8::/120", "2001:db8::", "2001:db8::ff", "2001:db8::/120"),
    ("Range", "10.0.0.5-10.0.0.20", "10.0.0.5", "10.0.0.20", "10.0.0.5-10.0.0.20"),
    ("Range (IPv6)", "2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff", "2001:db8::1-2001:db8::ff"),
    ("Last-octet range", "10.0.0.5-20", "10.0.0.5", "10.0.0.20", "10.0.0.5-10.0.0.20"),
    ("Address", "10.0.0.7", "10.0.0.7", "10.0.0.7", "10.0.0.7"),
    ("Address (IPv6)", "::1", "::1", "::1", "::1"),
    ("IPv4-mapped address", "::ffff:127.0.50.1", "127.0.50.1", "127.0.50.1", "127.0.50.1"),
    ("IPv4-mapped CIDR", "::ffff:127.0.50.0/120", "127.0.50.0", "127.0.50.255", "127.0.50.0/24"),
    ("IPv4-mapped range", "::ffff:127.0.50.1-::ffff:127.0.50.9", "127.0.50.1", "127.0.50.9", "127.0.50.1-127.0.50.9"),
]


@pytest.mark.parametrize(("form", "text", "first", "last", "canonical"), DOCUMENTED_FORMS)
def test_every_documented_address_form_parses_to_its_addresses(
    form: str, text: str, first: str, last: str, canonical: str
) -> None:
    spec = parse_target(text)
    assert isinstance(spec, AddressRange), form
    assert (str(spec.first), str(spec.last)) == (first, last), form
    assert canonical_target(text) == canonical, form
    assert canonical_target(canonical) == canonical, form  # what is stored parses to itself


@pytest.mark.parametrize(
    ("text", "name"),
    [("core-sw1.lab.example", "core-sw1.lab.example"), ("Web-1.Lab.Test.", "web-1.lab.test"), ("router", "router")],
)
def test_host_names_are_kept_lowercased_for_the_collector_to_resolve(text: str, name: str) -> None:
    assert parse_target(text) == HostName(name)
    assert canonical_target(text) == name


def test_a_cidr_with_host_bits_runs_its_network_but_is_refused_at_create() -> None:
    spec = parse_target("10.0.0.77/24")
    assert isinstance(spec, AddressRange)
    assert (str(spec.first), str(spec.last)) == ("10.0.0.0", "10.0.0.255")
    with pytest.raises(InvalidArgument, match=r"has host bits set: did you mean 10.0.0.0/24\?"):
        canonical_target("10.0.0.77/24")


def test_ipv4_mapped_addresses_are_one_host_with_their_ipv4_address() -> None:
    target_set = TargetSet.build([parse_target("::ffff:127.0.50.1"), parse_target("127.0.50.1")])
    assert list(target_set) == ["127.0.50.1"]
    assert "::ffff:127.0.50.1" in target_set
    resolved = {"dual.lab": [ipaddress.ip_address("::ffff:10.0.0.1")]}
    assert list(TargetSet.build([parse_target("dual.lab")], resolved=resolved)) == ["10.0.0.1"]


def test_a_limit_refusal_says_the_count_and_the_limit_before_any_scan() -> None:
    with pytest.raises(InvalidArgument, match=r"expand to 16,777,216 addresses; a discovery scans at most 1,048,576"):
        check_target_lists(["127.0.0.0/8"])
    assert check_target_lists(["10.0.0.0/12", "gw.lab", "10.0.0.0/12"], ["10.0.0.5"]) == (
        ["10.0.0.0/12", "gw.lab"],
        ["10.0.0.5"],
    )
    with pytest.raises(InvalidArgument, match="exclusion 'x!' is not"):
        check_target_lists(["10.0.0.0/24"], ["x!"])


def test_long_or_non_ascii_targets_are_refused_without_echoing_them_whole() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_target("a" * 10_000)
    assert "(10000 characters)" in str(info.value) and len(str(info.value)) < 200
    with pytest.raises(InvalidArgument, match="ASCII only"):
        parse_target("\uff11\uff10.0.0.1")  # fullwidth "10"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty target"),
        ("10.0.0.300", "not a valid IP address"),
        ("10.0.0.0/33", "not a valid CIDR"),
        ("10.0.0.20-5", "ends before it starts"),
        ("10.0.0.5-256", "past .255"),
        ("10.0.0.5-::1", "mixes IPv4 and IPv6"),
        ("10.0.0.5-x", "is not an IP address"),
        ("fe80::1%eth0", "scoped IPv6"),
        ("bad_name!", "is not an address, a CIDR"),
        ("-leading.dash", "is not an address, a CIDR"),
    ],
)
def test_invalid_targets_are_refused_with_the_text_in_the_message(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_target(text)


def test_host_names_are_resolved_by_the_caller_and_unresolved_ones_skipped() -> None:
    specs = [parse_target("web-1.lab.test"), parse_target("gone.lab.test"), parse_target("10.0.0.1")]
    assert host_names(specs) == ["web-1.lab.test", "gone.lab.test"]
    resolved = {"web-1.lab.test": (ipaddress.ip_address("10.0.0.9"), ipaddress.ip_address("10.0.0.1"))}

    target_set = TargetSet.build(specs, [], resolved)
    assert list(target_set) == ["10.0.0.1", "10.0.0.9"]
    excluded = TargetSet.build(specs, [parse_target("web-1.lab.test")], resolved)
    assert list(excluded) == []
