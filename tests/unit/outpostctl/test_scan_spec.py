"""What a discovery scans, as typed: ports, targets, probes, resolver."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outpostctl.scan_spec import parse_ports, parse_probes, parse_resolver, parse_targets, ports_text, split_list


def test_lists_may_be_comma_separated_and_repeated_and_lose_blanks_and_repeats() -> None:
    assert split_list(["a, b,,", " c", "a"]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["22"], [22]),
        (["443,22,80"], [22, 80, 443]),
        (["8000-8003"], [8000, 8001, 8002, 8003]),
        (["22, 80", "80,8000-8001"], [22, 80, 8000, 8001]),
        (["1-1"], [1]),
        (["65535"], [65535]),
    ],
)
def test_ports_expand_ranges_sorted_and_once_each(values: list[str], expected: list[int]) -> None:
    assert parse_ports(values) == expected


def test_the_whole_port_space_is_accepted() -> None:
    assert len(parse_ports(["1-65535"])) == 65535


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "port 0 in '0' is outside 1-65535"),
        ("65536", "port 65536 in '65536' is outside 1-65535"),
        ("22,70000-70001", "outside 1-65535"),
        ("8010-8000", "port range '8010-8000' runs backwards: write 8000-8010"),
        ("ssh", "'ssh' is not a port or a port range"),
        ("80-", "'80-' is not a port or a port range"),
        ("-80", "'-80' is not a port or a port range"),
        ("1-2-3", "'1-2-3' is not a port or a port range"),
        ("+22", "'+22' is not a port or a port range"),
        (",", "give at least one port"),
    ],
)
def test_bad_ports_are_refused_naming_the_item(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_ports([value])


def test_ports_print_back_as_ranges_the_flag_accepts() -> None:
    assert ports_text([8002, 22, 8000, 8001, 80, 9000, 80]) == "22,80,8000-8002,9000"
    assert ports_text([]) == ""


@given(st.lists(st.integers(min_value=1, max_value=65535), min_size=1, max_size=200))
def test_printed_ports_parse_back_to_the_same_set(ports: list[int]) -> None:
    assert parse_ports([ports_text(ports)]) == sorted(set(ports))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.7", "10.0.0.7"),
        ("10.0.0.7/32", "10.0.0.7/32"),
        ("10.0.0.5-10.0.0.20", "10.0.0.5-10.0.0.20"),
        ("2001:DB8::/64", "2001:db8::/64"),
        ("2001:db8::1-2001:db8::ff", "2001:db8::1-2001:db8::ff"),
        ("core-sw-1.lab", "core-sw-1.lab"),
        ("printer", "printer"),
        ("10.0.0.5-20", "10.0.0.5-10.0.0.20"),
        ("::ffff:127.0.50.1", "127.0.50.1"),
        ("::ffff:127.0.50.0/120", "127.0.50.0/24"),
        ("ad_host.corp", "ad_host.corp"),
    ],
)
def test_targets_are_addresses_cidrs_ranges_or_host_names(value: str, expected: str) -> None:
    assert parse_targets([value]) == [expected]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1/24", "'10.0.0.1/24' has host bits set: did you mean 10.0.0.0/24?"),
        ("10.0.0.0/33", "is not a valid CIDR"),
        ("10.0.0.300", "is not a valid IP address"),
        ("10.0.0.20-10.0.0.5", "ends before it starts: write 10.0.0.5-10.0.0.20"),
        ("10.0.0.1-2001:db8::1", "mixes IPv4 and IPv6"),
        ("10.0.0.1-host", "'host' is not an IP address"),
        ("bad host!", "is not an address, a CIDR"),
        ("-leading.dash", "is not an address, a CIDR"),
    ],
)
def test_bad_targets_are_refused_naming_the_item(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_targets([value])


def test_targets_may_mix_forms_in_one_list() -> None:
    assert parse_targets(["10.0.0.0/24,10.0.1.5-10.0.1.9", "gw.lab"]) == [
        "10.0.0.0/24",
        "10.0.1.5-10.0.1.9",
        "gw.lab",
    ]


def test_probes_are_lowercased_and_checked() -> None:
    assert parse_probes(["ICMP,tcp", "Tcp,snmp"]) == ["icmp", "tcp", "snmp"]
    assert parse_probes([]) == []
    with pytest.raises(ValueError, match="unknown probe 'ping': choose from icmp, tcp, dns, banners, snmp, ssh"):
        parse_probes(["icmp,ping"])


@pytest.mark.parametrize("value", ["10.0.0.53:53", "[2001:db8::53]:53", "dns.lab:5353"])
def test_resolvers_are_host_and_port(value: str) -> None:
    assert parse_resolver(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.53", "is not HOST:PORT"),
        ("2001:db8::53", "in brackets"),
        ("[not-v6]:53", "is not an IPv6 address"),
        ("10.0.0.53:0", "outside 1-65535"),
        ("10.0.0.53:dns", "is not a port"),
        (":53", "is not HOST:PORT"),
    ],
)
def test_bad_resolvers_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_resolver(value)
