"""Reverse DNS (and target host names) against a dnslib server on loopback."""

from __future__ import annotations

from services.collector.discovery import DiscoveryPlan
from tests.integration.discovery.conftest import WEB_HOST, WEB_NAME, Scan
from tests.peers.dns import DnsServer
from tests.peers.process import free_port


async def test_a_ptr_record_becomes_the_hostname_and_nxdomain_is_measured_empty(
    dns_server: DnsServer, scan: Scan
) -> None:
    plan = DiscoveryPlan(
        targets=(WEB_HOST, "127.0.0.19"),
        exclusions=(),
        ports=(free_port(WEB_HOST),),
        probes=frozenset({"tcp", "dns"}),
        dns_resolver=dns_server.address,
    )
    devices = await scan(plan)

    assert devices[WEB_HOST].hostname == WEB_NAME
    assert devices["127.0.0.19"].hostname == ""  # NXDOMAIN: measured, no name
    assert devices["127.0.0.19"].notes == ()


async def test_a_resolver_that_does_not_answer_is_a_note_not_a_failure(scan: Scan) -> None:
    silent = ("127.0.0.1", free_port("127.0.0.1"))
    plan = DiscoveryPlan(
        targets=(WEB_HOST,),
        exclusions=(),
        ports=(free_port(WEB_HOST),),
        probes=frozenset({"tcp", "dns"}),
        dns_resolver=silent,
        timeout=0.5,
    )
    device = (await scan(plan))[WEB_HOST]

    assert device.hostname is None  # not measured: the inventory keeps the name it has
    assert len(device.notes) == 1 and device.notes[0].startswith("dns: ")


async def test_a_resolver_that_fails_is_a_note_and_the_name_is_not_measured(dns_server: DnsServer, scan: Scan) -> None:
    plan = DiscoveryPlan(
        targets=(WEB_HOST,),
        exclusions=(),
        ports=(free_port(WEB_HOST),),
        probes=frozenset({"tcp", "dns"}),
        dns_resolver=dns_server.address,
        timeout=0.5,
    )
    dns_server.fail()
    try:
        device = (await scan(plan))[WEB_HOST]
    finally:
        dns_server.fail(False)

    assert device.hostname is None
    assert device.notes == ("dns: the resolver failed to answer (SERVFAIL or refused)",)


async def test_host_name_targets_are_resolved_with_the_jobs_resolver(dns_server: DnsServer, scan: Scan) -> None:
    plan = DiscoveryPlan(
        targets=(WEB_NAME, "missing.lab.test"),
        exclusions=(),
        ports=(free_port(WEB_HOST),),
        probes=frozenset({"tcp"}),
        dns_resolver=dns_server.address,
    )
    devices = await scan(plan)

    assert set(devices) == {WEB_HOST}
