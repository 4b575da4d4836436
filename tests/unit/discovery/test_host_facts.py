"""Parsers of what a host reports about itself, and MAC formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.collector.discovery.host_facts import (
    build_interfaces,
    format_mac,
    is_real_mac,
    parse_cpu_count,
    parse_ip_addr,
    parse_ip_link,
    parse_meminfo,
    parse_os_release,
    parse_sys_class_net,
    parse_uptime,
)
from services.collector.discovery.model import NetworkInterface

IP_LINK = (
    "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000"
    "\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
    "2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default "
    "\\    link/ether 02:42:AC:11:00:02 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n"
    "3: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN mode DEFAULT group default "
    "qlen 1000\\    link/none\n"
)
IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: eth0    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0\\       valid_lft forever preferred_lft forever
"""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (bytes.fromhex("0242ac110002"), "02:42:ac:11:00:02"),
        (b"", ""),
        ("02:42:AC:11:00:02", "02:42:ac:11:00:02"),
        ("02-42-ac-11-00-02", "02:42:ac:11:00:02"),
        ("0242.ac11.0002", "02:42:ac:11:00:02"),
        ("2:42:ac:11:0:2", "02:42:ac:11:00:02"),
        ("0242ac110002", "02:42:ac:11:00:02"),
        ("not a mac", ""),
        ("", ""),
    ],
)
def test_format_mac(raw: bytes | str, expected: str) -> None:
    assert format_mac(raw) == expected


@given(st.binary(min_size=6, max_size=6))
def test_format_mac_round_trips_through_text(octets: bytes) -> None:
    text = format_mac(octets)
    assert len(text) == 17
    assert format_mac(text) == text
    assert format_mac(text.upper().replace(":", "-")) == text


def test_zero_and_empty_macs_are_not_real() -> None:
    assert not is_real_mac("00:00:00:00:00:00")
    assert not is_real_mac("")
    assert is_real_mac("02:42:ac:11:00:02")


def test_os_release_name_and_version_id() -> None:
    text = (
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="12"\nVERSION="12 (bookworm)"\n'
    )
    assert parse_os_release(text) == ("Debian GNU/Linux", "12")


def test_os_release_falls_back_to_version_and_handles_quoting() -> None:
    assert parse_os_release("NAME='Arch Linux'\nVERSION=rolling\n# comment\n") == ("Arch Linux", "rolling")
    assert parse_os_release('NAME="Odd \\"quoted\\""\n') == ('Odd "quoted"', "")
    assert parse_os_release("") == ("", "")


def test_meminfo_total_in_bytes() -> None:
    assert parse_meminfo("MemTotal:       16315856 kB\nMemFree:  1 kB\n") == 16315856 * 1024
    assert parse_meminfo("MemFree: 1 kB\n") == 0


def test_uptime_whole_seconds() -> None:
    assert parse_uptime("350735.47 234388.90\n") == 350735
    assert parse_uptime("") == 0


def test_cpu_count_from_nproc_else_cpuinfo() -> None:
    assert parse_cpu_count("8\n") == 8
    assert parse_cpu_count("", "processor\t: 0\nmodel\t: x\nprocessor\t: 1\n") == 2


def test_ip_link_and_addr_make_interfaces() -> None:
    macs = parse_ip_link(IP_LINK)
    assert macs == {"lo": "00:00:00:00:00:00", "eth0": "02:42:ac:11:00:02", "wg0": ""}
    addresses = parse_ip_addr(IP_ADDR)
    assert addresses == {"lo": ["127.0.0.1/8", "::1/128"], "eth0": ["172.17.0.2/16"]}
    assert build_interfaces(macs, addresses) == (
        NetworkInterface("lo", "00:00:00:00:00:00", ("127.0.0.1/8", "::1/128")),
        NetworkInterface("eth0", "02:42:ac:11:00:02", ("172.17.0.2/16",)),
        NetworkInterface("wg0", "", ()),
    )


def test_sys_class_net_fallback() -> None:
    text = "/sys/class/net/eth0/address:02:42:ac:11:00:02\n/sys/class/net/lo/address:00:00:00:00:00:00\n"
    assert parse_sys_class_net(text) == {"eth0": "02:42:ac:11:00:02", "lo": "00:00:00:00:00:00"}
