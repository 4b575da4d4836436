"""`merge`: one observation into one device -> the new state and exactly the fields that changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.inventory.domain.device import DeviceRecord, Sighting, port_field
from services.gateway.inventory.domain.merge import is_stale, merge
from services.gateway.inventory.domain.observation import (
    DeviceObservation,
    HostAudit,
    HttpInfo,
    NetworkInterface,
    PortObservation,
    SnmpFacts,
    SshInfo,
    TlsInfo,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
SCANNED = frozenset({22, 80, 443})


def sighting(run: str = "run-1", at: datetime = T0, scanned: frozenset[int] = SCANNED) -> Sighting:
    return Sighting(zone="dmz", collector="edge-1", job_run_id=run, observed_at=at, scanned_ports=scanned)


BASE = DeviceObservation(
    ip="10.0.0.5",
    hostname="web.example",
    ports=(
        PortObservation(22, service="ssh", banner="SSH-2.0-OpenSSH_9.6"),
        PortObservation(80, service="http", banner="", http=HttpInfo(200, "nginx", "Welcome")),
    ),
    mac_addresses=("AA-BB-CC-00-00-05",),
    snmp=SnmpFacts(sys_name="web", sys_uptime_seconds=1000, engine_id="0x80001F8804"),
    audit=HostAudit(kernel="6.1.0", os_name="Debian", interfaces=(NetworkInterface("eth0", "aa:bb:cc:00:00:05"),)),
)
BASE_AUDIT = HostAudit(interfaces=(NetworkInterface("eth0", "aa:bb:cc:00:00:05"),))


def first(observation: DeviceObservation = BASE) -> DeviceRecord:
    record, _ = merge(None, observation, sighting(), new_id=lambda: "dev-1")
    return record


def fields(changes: list) -> list[tuple[str, str, str]]:
    return [(c.field, c.old_value, c.new_value) for c in changes]


def test_first_sighting_records_one_created_change_and_the_whole_state() -> None:
    record, changes = merge(None, BASE, sighting(), new_id=lambda: "dev-1")

    assert fields(changes) == [("created", "", "10.0.0.5")]
    assert changes[0].device_id == "dev-1"
    assert (changes[0].changed_at, changes[0].job_run_id) == (T0, "run-1")
    assert record.mac_addresses == ("aa:bb:cc:00:00:05",)
    assert record.snmp_engine_id == "80001f8804"
    assert sorted(record.ports) == [("tcp", 22), ("tcp", 80)]
    assert record.ports[("tcp", 80)].details == {"http.status": "200", "http.server": "nginx", "http.title": "Welcome"}
    assert record.facts == {
        "snmp.sys_name": "web",
        "snmp.sys_uptime_seconds": "1000",
        "audit.kernel": "6.1.0",
        "audit.os_name": "Debian",
        "audit.if.eth0.mac": "aa:bb:cc:00:00:05",
    }
    assert (record.first_seen, record.last_seen, record.last_job_run_id) == (T0, T0, "run-1")


CASES = [
    pytest.param(
        replace(BASE, hostname="www.example"),
        SCANNED,
        [("hostname", "web.example", "www.example")],
        id="hostname-changed",
    ),
    pytest.param(replace(BASE, hostname=None), SCANNED, [], id="hostname-not-measured-is-left-alone"),
    pytest.param(
        replace(BASE, hostname=""), SCANNED, [("hostname", "web.example", "")], id="hostname-measured-empty-nxdomain"
    ),
    pytest.param(
        replace(BASE, ports=(BASE.ports[0], PortObservation(80, service="http", http=HttpInfo(200, "nginx")))),
        SCANNED,
        [],
        id="title-not-read-is-left-alone",
    ),
    pytest.param(
        replace(BASE, ports=(BASE.ports[0], PortObservation(80, service="http", http=HttpInfo(200, "nginx", "")))),
        SCANNED,
        [("port.80.http.title", "Welcome", "")],
        id="page-without-title-drops-the-old-title",
    ),
    pytest.param(
        replace(BASE, ports=(BASE.ports[0], PortObservation(80, state="filtered"))),
        SCANNED,
        [("port.80", "open", "filtered")],
        id="port-filtered-keeps-its-service-and-details",
    ),
    pytest.param(
        replace(BASE, ports=(*BASE.ports, PortObservation(443, state="filtered"))),
        SCANNED,
        [("port.443", "", "filtered")],
        id="new-filtered-port",
    ),
    pytest.param(
        replace(BASE, ports=(BASE.ports[0], PortObservation(80, state="closed"))),
        SCANNED,
        [("port.80", "open", "closed")],
        id="port-listed-closed",
    ),
    pytest.param(
        replace(BASE, ports=(*BASE.ports, PortObservation(443, state="closed"))),
        SCANNED,
        [],
        id="closed-port-never-seen-is-not-stored",
    ),
    pytest.param(
        replace(BASE, ports=(*BASE.ports, PortObservation(443, service="https"))),
        SCANNED,
        [("port.443", "", "open")],
        id="port-opened",
    ),
    pytest.param(replace(BASE, ports=BASE.ports[:1]), SCANNED, [("port.80", "open", "closed")], id="port-closed"),
    pytest.param(replace(BASE, ports=BASE.ports[:1]), frozenset({22, 443}), [], id="port-not-scanned-is-not-closed"),
    pytest.param(replace(BASE, ports=BASE.ports[:1]), frozenset(), [], id="scan-list-unknown-closes-nothing"),
    pytest.param(
        replace(BASE, ports=(PortObservation(22, service="ssh", banner="SSH-2.0-OpenSSH_9.7"), BASE.ports[1])),
        SCANNED,
        [("port.22.banner", "SSH-2.0-OpenSSH_9.6", "SSH-2.0-OpenSSH_9.7")],
        id="banner-changed",
    ),
    pytest.param(
        replace(BASE, ports=(PortObservation(22, service="ssh"), BASE.ports[1])),
        SCANNED,
        [],
        id="banner-not-read-is-unknown",
    ),
    pytest.param(
        replace(BASE, ports=(BASE.ports[0], PortObservation(80, service="http-alt", http=HttpInfo(301, "nginx")))),
        SCANNED,
        [("port.80.service", "http", "http-alt"), ("port.80.http.status", "200", "301")],
        id="service-and-details-changed",
    ),
    pytest.param(
        replace(BASE, mac_addresses=("aa:bb:cc:00:00:99",)),
        SCANNED,
        [("mac_addresses", "aa:bb:cc:00:00:05", "aa:bb:cc:00:00:99")],
        id="mac-changed",
    ),
    pytest.param(replace(BASE, mac_addresses=()), SCANNED, [], id="no-mac-is-unknown"),
    pytest.param(
        replace(BASE, snmp=SnmpFacts(sys_name="web-2", sys_uptime_seconds=5000, engine_id="80001f8804")),
        SCANNED,
        [("facts.snmp.sys_name", "web", "web-2")],
        id="snmp-fact-changed-uptime-growth-is-not-history",
    ),
    pytest.param(
        replace(BASE, snmp=SnmpFacts(sys_name="web", sys_uptime_seconds=10, engine_id="80001f8804")),
        SCANNED,
        [("facts.snmp.sys_uptime_seconds", "1000", "10")],
        id="uptime-going-down-is-a-reboot",
    ),
    pytest.param(
        replace(BASE, audit=HostAudit(kernel="6.1.1", os_name="Debian", interfaces=BASE_AUDIT.interfaces)),
        SCANNED,
        [("facts.audit.kernel", "6.1.0", "6.1.1")],
        id="audit-fact-changed",
    ),
    pytest.param(
        replace(BASE, audit=HostAudit(kernel="6.1.0", interfaces=(NetworkInterface("eth1", "aa:bb:cc:00:00:06"),))),
        SCANNED,
        [("facts.audit.if.eth0.mac", "aa:bb:cc:00:00:05", ""), ("facts.audit.if.eth1.mac", "", "aa:bb:cc:00:00:06")],
        id="interface-list-is-replaced-as-a-whole",
    ),
    pytest.param(replace(BASE, snmp=None, audit=None), SCANNED, [], id="sources-not-probed-change-nothing"),
    pytest.param(
        replace(BASE, ip="10.0.0.77"),
        SCANNED,
        [("ip", "10.0.0.5", "10.0.0.77")],
        id="ip-changed-when-identity-says-same-device",
    ),
    pytest.param(
        replace(
            BASE,
            ports=(
                PortObservation(22, banner="SSH-2.0-OpenSSH_9.6", ssh=SshInfo(host_key_fingerprint="SHA256:abc")),
                BASE.ports[1],
            ),
        ),
        SCANNED,
        [("port.22.ssh.host_key_fingerprint", "", "SHA256:abc"), ("port.22.ssh.host_key_changed", "", "false")],
        id="ssh-host-key-learned",
    ),
    pytest.param(
        replace(BASE, ports=(*BASE.ports, PortObservation(161, protocol="udp", service="snmp"))),
        SCANNED,
        [("port.161/udp", "", "open")],
        id="udp-port-named-with-protocol",
    ),
]


@pytest.mark.parametrize(("observation", "scanned", "expected"), CASES)
def test_second_run_records_exactly_the_fields_that_changed(
    observation: DeviceObservation, scanned: frozenset[int], expected: list[tuple[str, str, str]]
) -> None:
    existing = first()
    record, changes = merge(existing, observation, sighting("run-2", T1, scanned))

    assert fields(changes) == expected
    assert all((c.device_id, c.changed_at, c.job_run_id) == ("dev-1", T1, "run-2") for c in changes)
    assert record.id == existing.id
    assert (record.first_seen, record.last_seen, record.last_job_run_id) == (T0, T1, "run-2")


def test_a_closed_port_keeps_its_last_banner_and_reopening_is_recorded() -> None:
    closed, _ = merge(first(), replace(BASE, ports=BASE.ports[:1]), sighting("run-2", T1))
    assert closed.ports[("tcp", 80)].open is False
    assert closed.ports[("tcp", 80)].details["http.server"] == "nginx"
    assert closed.ports[("tcp", 80)].last_seen == T0
    assert [p.port for p in closed.open_ports()] == [22]

    reopened, changes = merge(closed, BASE, sighting("run-3", T1 + timedelta(hours=1)))

    assert fields(changes) == [("port.80", "closed", "open")]
    assert reopened.ports[("tcp", 80)].first_seen == T0


def test_filtered_port_transitions_are_recorded_and_keep_what_the_port_said() -> None:
    stored = first()
    filtered_80 = replace(BASE, ports=(BASE.ports[0], PortObservation(80, state="filtered")))
    filtered, changes = merge(stored, filtered_80, sighting("run-2", T1))
    assert fields(changes) == [("port.80", "open", "filtered")]
    port = filtered.ports[("tcp", 80)]
    assert (port.state, port.service, port.details) == ("filtered", "http", stored.ports[("tcp", 80)].details)
    assert [p.port for p in filtered.open_ports()] == [22]

    reopened, changes = merge(filtered, BASE, sighting("run-3", T1 + timedelta(hours=1)))
    assert fields(changes) == [("port.80", "filtered", "open")]

    closed, changes = merge(reopened, replace(BASE, ports=BASE.ports[:1]), sighting("run-4", T1 + timedelta(hours=2)))
    assert fields(changes) == [("port.80", "open", "closed")]
    refiltered, changes = merge(closed, filtered_80, sighting("run-5", T1 + timedelta(hours=3)))
    assert fields(changes) == [("port.80", "closed", "filtered")]
    again, changes = merge(refiltered, replace(BASE, ports=BASE.ports[:1]), sighting("run-6", T1 + timedelta(hours=4)))
    assert fields(changes) == [("port.80", "filtered", "closed")]
    assert again.ports[("tcp", 80)].details == stored.ports[("tcp", 80)].details


def test_a_filtered_port_not_scanned_by_the_run_stays_filtered() -> None:
    filtered, _ = merge(
        first(), replace(BASE, ports=(BASE.ports[0], PortObservation(80, state="filtered"))), sighting("run-2", T1)
    )
    record, changes = merge(filtered, replace(BASE, ports=()), sighting("run-3", T1, frozenset()))
    assert changes == [] and record.ports[("tcp", 80)].state == "filtered"
    assert record.ports[("tcp", 22)].state == "open"


def test_a_port_listed_open_and_filtered_in_one_observation_is_open() -> None:
    both = replace(
        BASE, ports=(PortObservation(80, state="filtered"), *BASE.ports, PortObservation(22, state="filtered"))
    )
    record, changes = merge(first(), both, sighting("run-2", T1))
    assert changes == []
    assert [p.state for p in record.known_ports()] == ["open", "open"]


def test_a_first_sighting_keeps_filtered_ports_and_not_closed_ones() -> None:
    observed = replace(
        BASE, hostname="", ports=(PortObservation(23, state="closed"), PortObservation(25, state="filtered"))
    )
    record, changes = merge(None, observed, sighting(), new_id=lambda: "dev-1")
    assert fields(changes) == [("created", "", "10.0.0.5")]
    assert [(p.port, p.state) for p in record.known_ports()] == [(25, "filtered")]
    assert record.hostname == ""


def test_a_second_report_in_the_same_run_only_adds_ports() -> None:
    existing = first()
    fragment = replace(BASE, ports=(PortObservation(443, service="https"),))

    record, changes = merge(existing, fragment, sighting("run-1", T0))

    assert fields(changes) == [("port.443", "", "open")]
    assert all(p.open for p in record.ports.values())


def test_a_port_listed_twice_merges_to_one_without_flapping() -> None:
    doubled = replace(BASE, ports=(*BASE.ports, PortObservation(22, banner="SSH-2.0-later")))
    record, _ = merge(None, doubled, sighting(), new_id=lambda: "dev-1")
    assert record.ports[("tcp", 22)].banner == "SSH-2.0-later"
    assert record.ports[("tcp", 22)].service == "ssh"

    _, again = merge(record, doubled, sighting("run-2", T1))
    assert again == []


def test_stale_is_an_older_observation_from_another_run() -> None:
    existing = first()
    assert is_stale(existing, sighting("run-0", T0 - timedelta(minutes=1)))
    assert not is_stale(existing, sighting("run-1", T0 - timedelta(minutes=1)))
    assert not is_stale(existing, sighting("run-2", T0))


# --- properties -----------------------------------------------------------------------

_text = st.text(alphabet="abcxyz-._ 019", max_size=8)
_mac = st.sampled_from(["aa:bb:cc:00:00:01", "AA-BB-CC-00-00-02", "not a mac", "", "ff:ff:ff:ff:ff:ff"])
_interface = st.builds(NetworkInterface, name=st.sampled_from(["eth0", "eth1", ""]), mac=_mac, addresses=st.tuples())
_port = st.builds(
    PortObservation,
    port=st.sampled_from([22, 80, 443, 8080]),
    protocol=st.sampled_from(["tcp", "udp"]),
    state=st.sampled_from(["open", "open", "filtered", "closed"]),
    service=_text,
    banner=_text,
    http=st.none() | st.builds(HttpInfo, status=st.sampled_from([0, 200, 404]), server=_text, title=st.none() | _text),
    tls=st.none() | st.builds(TlsInfo, subject=_text, issuer=_text, not_after=st.none() | st.just(T1)),
    ssh=st.none() | st.builds(SshInfo, host_key_fingerprint=_text, host_key_changed=st.booleans()),
)
_snmp = st.builds(
    SnmpFacts,
    sys_name=_text,
    sys_uptime_seconds=st.integers(0, 10**6),
    engine_id=_text,
    interfaces=st.lists(_interface, max_size=3).map(tuple),
)
_audit = st.builds(
    HostAudit,
    kernel=_text,
    cpu_count=st.integers(0, 64),
    uptime_seconds=st.integers(0, 10**6),
    interfaces=st.lists(_interface, max_size=3).map(tuple),
)
observations = st.builds(
    DeviceObservation,
    ip=st.sampled_from(["10.0.0.1", "10.0.0.2"]),
    hostname=st.none() | _text,
    ports=st.lists(_port, max_size=6).map(tuple),
    mac_addresses=st.lists(_mac, max_size=3).map(tuple),
    snmp=st.none() | _snmp,
    audit=st.none() | _audit,
)
scanned = st.frozensets(st.sampled_from([22, 80, 443, 8080, 8443]))


@settings(max_examples=150, deadline=None)
@given(before=st.none() | observations, observation=observations, ports=scanned, same_run=st.booleans())
def test_merging_the_same_observation_twice_records_nothing_the_second_time(
    before: DeviceObservation | None, observation: DeviceObservation, ports: frozenset[int], same_run: bool
) -> None:
    existing = None if before is None else merge(None, before, sighting("run-0", T0, ports))[0]
    once, _ = merge(existing, observation, sighting("run-1", T1, ports))

    second = sighting("run-1" if same_run else "run-2", T1 if same_run else T1 + timedelta(hours=1), ports)
    twice, changes = merge(once, observation, second)

    assert changes == []
    assert _without_sighting(twice) == _without_sighting(once)


def _without_sighting(record: DeviceRecord) -> DeviceRecord:
    """The state a merge decides, without when and by which run it was last seen."""
    ports = {key: replace(port, last_seen=T0) for key, port in record.ports.items()}
    return replace(record, ports=ports, last_seen=T0, last_job_run_id="")


@settings(max_examples=100, deadline=None)
@given(existing=observations, observation=observations, ports=scanned)
def test_every_recorded_change_matches_the_state_before_and_after(
    existing: DeviceObservation, observation: DeviceObservation, ports: frozenset[int]
) -> None:
    before = merge(None, existing, sighting("run-0", T0, ports))[0]
    after, changes = merge(before, observation, sighting("run-1", T1, ports))

    changed = [c.field for c in changes]
    assert len(changed) == len(set(changed)), "a field changes at most once per merge"
    for change in changes:
        assert change.old_value != change.new_value
        if change.field.startswith("facts."):
            fact = change.field.removeprefix("facts.")
            assert before.facts.get(fact, "") == change.old_value
            assert after.facts.get(fact, "") == change.new_value
        if change.field == "hostname":
            assert (before.hostname, after.hostname) == (change.old_value, change.new_value)
        if change.field.startswith("port.") and change.field.count(".") == 1:
            key = next(k for k in after.ports if port_field(k) == change.field)
            assert (before.ports[key].state if key in before.ports else "") == change.old_value
            assert after.ports[key].state == change.new_value
    listed = {p.key for p in observation.ports}
    for key, port in after.ports.items():
        if key in before.ports and before.ports[key].state != port.state and key not in listed:
            # Only the absence of a scanned TCP port changes a state the observation does not list.
            assert key[0] == "tcp" and key[1] in ports and port.state == "closed"


def test_when_a_ports_service_changes_the_old_services_details_go_and_the_history_says_so() -> None:
    stored = first()
    ssh_on_80 = PortObservation(80, service="ssh", banner="SSH-2.0-OpenSSH_9.6")
    observation = replace(BASE, ports=(BASE.ports[0], ssh_on_80))
    record, changes = merge(stored, observation, sighting("run-2", T1), new_id=lambda: "unused")
    port = record.ports[("tcp", 80)]
    assert (port.service, port.banner, port.details) == ("ssh", "SSH-2.0-OpenSSH_9.6", {})
    assert fields(changes) == [
        ("port.80.service", "http", "ssh"),
        ("port.80.banner", "", "SSH-2.0-OpenSSH_9.6"),
        ("port.80.http.server", "nginx", ""),
        ("port.80.http.status", "200", ""),
        ("port.80.http.title", "Welcome", ""),
    ]
    again, repeated = merge(record, observation, sighting("run-3", T1 + timedelta(hours=1)), new_id=lambda: "x")
    assert repeated == [] and again.ports[("tcp", 80)] == replace(port, last_seen=T1 + timedelta(hours=1))


def test_an_unknown_service_in_a_later_run_keeps_what_the_known_one_said() -> None:
    stored = first()
    unnamed = PortObservation(80)
    record, changes = merge(stored, replace(BASE, ports=(BASE.ports[0], unnamed)), sighting("run-2", T1), new_id=str)
    assert record.ports[("tcp", 80)].details == stored.ports[("tcp", 80)].details
    assert changes == []
