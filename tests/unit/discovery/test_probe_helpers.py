"""Pure pieces of the probes: who may ping, SNMP interface rows, the SSH audit script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pysnmp.proto.rfc1902 import Gauge32, Integer32, IpAddress, OctetString  # type: ignore[import-untyped]

from services.collector.discovery.icmp import IcmpAccess, has_net_raw, icmp_access
from services.collector.discovery.model import NetworkInterface
from services.collector.discovery.snmp import (
    IF_DESCR,
    IF_HIGH_SPEED,
    IF_NAME,
    IF_PHYS_ADDRESS,
    IF_SPEED,
    IP_AD_ENT_IF_INDEX,
    IP_AD_ENT_NET_MASK,
    interfaces_from_columns,
)
from services.collector.discovery.ssh_audit import COMMANDS, audit_from_outputs, audit_script, split_sections


@pytest.mark.parametrize(
    ("net_raw", "groups", "ping_group_range", "expected"),
    [
        (True, {0}, (1, 0), IcmpAccess.PRIVILEGED),
        (True, {61234}, (1, 0), IcmpAccess.PRIVILEGED),  # a systemd DynamicUser with the ICMP drop-in
        (False, {0}, (1, 0), IcmpAccess.NOT_PERMITTED),  # root without CAP_NET_RAW
        (False, {1000}, (0, 2147483647), IcmpAccess.UNPRIVILEGED),
        (False, {1000, 27}, (27, 27), IcmpAccess.UNPRIVILEGED),
        (False, {1000}, (1, 0), IcmpAccess.NOT_PERMITTED),  # the kernel default: nobody
        (False, {1000}, None, IcmpAccess.NOT_PERMITTED),
    ],
)
def test_icmp_access(
    net_raw: bool, groups: set[int], ping_group_range: tuple[int, int] | None, expected: IcmpAccess
) -> None:
    assert icmp_access(net_raw, groups, ping_group_range) is expected


@pytest.mark.parametrize(
    ("cap_eff", "expected"),
    [
        ("000001ffffffffff", True),
        ("0000000000002000", True),
        ("0000000000000000", False),
        ("00000000a80425fb", True),  # a container runtime's default set
        ("00000000a80405fb", False),  # the same with --cap-drop NET_RAW
    ],
)
def test_cap_net_raw_is_read_from_the_effective_set(cap_eff: str, expected: bool, tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff}\nCapBnd:\t000001ffffffffff\n")
    assert has_net_raw(status) is expected


def test_snmp_columns_become_interfaces_by_index() -> None:
    columns: dict[tuple[int, ...], dict[tuple[int, ...], Any]] = {
        IF_DESCR: {(1,): OctetString(b"lo"), (2,): OctetString(b"Intel Ethernet\x00")},
        IF_NAME: {(1,): OctetString(b"lo"), (2,): OctetString(b"eth0")},
        IF_PHYS_ADDRESS: {(1,): OctetString(b""), (2,): OctetString(bytes.fromhex("0242ac110002"))},
        IF_SPEED: {(1,): Gauge32(10_000_000), (2,): Gauge32(4_294_967_295)},
        IF_HIGH_SPEED: {(2,): Gauge32(25_000)},
        IP_AD_ENT_IF_INDEX: {(127, 0, 0, 1): Integer32(1), (10, 0, 0, 5): Integer32(2)},
        IP_AD_ENT_NET_MASK: {(127, 0, 0, 1): IpAddress("255.0.0.0"), (10, 0, 0, 5): IpAddress("255.255.255.0")},
    }
    assert interfaces_from_columns(columns) == (
        NetworkInterface("lo", "", ("127.0.0.1/8",), "lo", 10_000_000),
        NetworkInterface("eth0", "02:42:ac:11:00:02", ("10.0.0.5/24",), "Intel Ethernet", 25_000_000_000),
    )


def test_the_audit_script_is_one_sh_c_and_its_output_splits_back() -> None:
    script = audit_script("@@m")
    assert script.startswith("sh -c '") and script.count("'") == 2
    output = "@@m hostname\nweb-1\n@@m kernel\n6.1.0-18-amd64\n@@m nproc\n@@m meminfo\nMemTotal: 2048 kB\n"
    sections = split_sections(output, "@@m")
    assert sections == {
        "hostname": "web-1\n",
        "kernel": "6.1.0-18-amd64\n",
        "nproc": "",
        "meminfo": "MemTotal: 2048 kB\n",
    }
    assert set(sections) <= set(COMMANDS)


def test_an_audit_of_a_host_that_answered_little_has_empty_facts() -> None:
    audit = audit_from_outputs(
        {"hostname": "web-1\n", "sys_class_net": "/sys/class/net/eth0/address:02:42:ac:11:00:02\n"}
    )
    assert audit.hostname == "web-1"
    assert (audit.os_name, audit.kernel, audit.cpu_count, audit.memory_bytes) == ("", "", 0, 0)
    assert audit.interfaces == (NetworkInterface("eth0", "02:42:ac:11:00:02"),)
