"""SNMP against net-snmp's snmpd, with net-snmp's own snmpget as the oracle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.collector.discovery import DiscoveryPlan, SnmpV2cCredential, SnmpV3Credential
from tests.integration.discovery.conftest import SNMP_HOST, Scan
from tests.peers.process import free_port
from tests.peers.snmpd import SnmpAgent, SnmpV3User, snmpget

SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME = (f"1.3.6.1.2.1.1.{n}.0" for n in (1, 2, 3, 5))
ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
SYS_CLASS_NET = Path("/sys/class/net")


def kernel_macs() -> dict[str, str]:
    """Interface name -> MAC as this kernel reports them."""
    return {path.name: (path / "address").read_text().strip() for path in SYS_CLASS_NET.iterdir()}


def _string(value: tuple[str, str]) -> str:
    return value[1].strip('"')


def _hex(value: tuple[str, str]) -> str:
    return "".join(value[1].split()).lower()


def _timeticks(value: tuple[str, str]) -> int:
    match = re.match(r"\((\d+)\)", value[1])
    assert match, value
    return int(match.group(1))


def _v3(user: SnmpV3User) -> SnmpV3Credential:
    return SnmpV3Credential(
        username=user.name,
        auth_protocol=user.auth_protocol.replace("-", ""),
        auth_key=user.auth_key,
        priv_protocol=user.priv_protocol.replace("-", ""),
        priv_key=user.priv_key,
    )


def _plan(agent: SnmpAgent, credential: SnmpV2cCredential | SnmpV3Credential, **changes: object) -> DiscoveryPlan:
    values: dict[str, object] = {
        "targets": (SNMP_HOST,),
        "exclusions": (),
        "ports": (),
        "probes": frozenset({"snmp"}),
        "snmp": credential,
        "snmp_port": agent.port,
        "timeout": 1.0,
    }
    values.update(changes)
    return DiscoveryPlan(**values)  # type: ignore[arg-type]


async def test_v2c_system_facts_equal_what_snmpget_reports(snmp_agent: SnmpAgent, scan: Scan) -> None:
    device = (await scan(_plan(snmp_agent, SnmpV2cCredential(snmp_agent.community))))[SNMP_HOST]
    oracle = snmpget(snmp_agent, [SYS_NAME, SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, ENGINE_ID])

    assert device.alive_by == "snmp"
    facts = device.snmp
    assert facts is not None
    assert facts.sys_name == _string(oracle[SYS_NAME]) == snmp_agent.sys_name
    assert facts.sys_descr == _string(oracle[SYS_DESCR])
    assert facts.sys_object_id == oracle[SYS_OBJECT_ID][1].lstrip(".")
    assert facts.engine_id == _hex(oracle[ENGINE_ID])
    assert abs(facts.sys_uptime_centiseconds - _timeticks(oracle[SYS_UPTIME])) < 500


async def test_v2c_interfaces_include_loopback_and_match_the_kernels_macs(snmp_agent: SnmpAgent, scan: Scan) -> None:
    device = (await scan(_plan(snmp_agent, SnmpV2cCredential(snmp_agent.community))))[SNMP_HOST]
    assert device.snmp is not None
    interfaces = {interface.name: interface for interface in device.snmp.interfaces}

    assert "lo" in interfaces
    assert "127.0.0.1/8" in interfaces["lo"].addresses
    # snmpd runs on this host, so its ifTable is this kernel's interface list.
    kernel = kernel_macs()
    assert set(interfaces) == set(kernel)
    for name, interface in interfaces.items():
        kernel_mac = kernel[name]
        if kernel_mac.strip("0:"):
            assert interface.mac == kernel_mac
            assert kernel_mac in device.mac_addresses


@pytest.mark.parametrize("user_key", ["sha-aes", "sha256-aes256"])
async def test_v3_user_reads_the_same_facts_as_snmpget(snmp_agent: SnmpAgent, scan: Scan, user_key: str) -> None:
    user = snmp_agent.users[user_key]
    device = (await scan(_plan(snmp_agent, _v3(user))))[SNMP_HOST]
    oracle = snmpget(snmp_agent, [SYS_NAME, ENGINE_ID], user=user)

    assert device.snmp is not None
    assert device.snmp.sys_name == _string(oracle[SYS_NAME])
    assert device.snmp.engine_id == _hex(oracle[ENGINE_ID])
    assert any(interface.name == "lo" for interface in device.snmp.interfaces)


async def test_a_wrong_community_gives_no_facts_but_a_note(snmp_agent: SnmpAgent, scan: Scan) -> None:
    plan = _plan(
        snmp_agent,
        SnmpV2cCredential("not-the-community"),
        probes=frozenset({"tcp", "snmp"}),
        ports=(free_port(SNMP_HOST),),
        timeout=0.5,
    )
    device = (await scan(plan))[SNMP_HOST]

    assert device.alive_by == "tcp"
    assert device.snmp is None
    assert device.notes == ("snmp: no answer (wrong credential, or no agent)",)


async def test_a_wrong_v3_key_is_an_authentication_note_and_still_proves_the_host(
    snmp_agent: SnmpAgent, scan: Scan
) -> None:
    user = snmp_agent.users["sha-aes"]
    wrong = SnmpV3Credential(user.name, "SHA", "wrong-auth-key", "AES", user.priv_key)
    device = (await scan(_plan(snmp_agent, wrong, timeout=0.5)))[SNMP_HOST]

    assert device.alive_by == "snmp"
    assert device.snmp is None
    assert len(device.notes) == 1 and device.notes[0].startswith("snmp: authentication failed")
