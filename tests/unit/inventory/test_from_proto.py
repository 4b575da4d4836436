"""The edge: agent result messages -> observations, and their flattened facts and details."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from services.gateway.inventory.domain.observation import (
    normalize_mac,
    observed_facts,
    port_banner,
    port_details,
)
from services.gateway.inventory.from_proto import (
    MAX_BANNER_CHARS,
    canonical_ip,
    observations_from_proto,
    observed_at_from_proto,
)
from services.gateway.inventory.store.queries import ip_sort_key

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def full_device() -> agent_pb2.DeviceObservation:
    return agent_pb2.DeviceObservation(
        ip=" 10.0.0.5 ",
        hostname="web.example",
        mac_addresses=["AA:BB:CC:00:00:05"],
        ports=[
            agent_pb2.PortObservation(
                port=443,
                protocol="TCP",
                service="https",
                banner="",
                http=agent_pb2.HttpInfo(status=200, server="nginx", title="Hi"),
                tls=agent_pb2.TlsInfo(
                    subject="CN=web", issuer="CN=ca", not_after_unix=1_800_000_000, subject_alt_names=["web", "www"]
                ),
            ),
            agent_pb2.PortObservation(
                port=22,
                ssh=agent_pb2.SshInfo(
                    banner="SSH-2.0-OpenSSH_9.6\r\n",
                    host_key_type="ssh-ed25519",
                    host_key_fingerprint="SHA256:abc",
                    host_key_changed=True,
                ),
            ),
        ],
        snmp=agent_pb2.SnmpFacts(
            sys_name="web",
            sys_descr="Linux web",
            sys_object_id="1.3.6.1.4.1.8072.3.2.10",
            sys_uptime_centiseconds=123456,
            engine_id="80001f8804",
            interfaces=[agent_pb2.NetworkInterface(name="eth0", mac="AA:BB:CC:00:00:05", speed_bps=10**9)],
        ),
        audit=agent_pb2.HostAudit(
            hostname="web",
            os_name="Debian",
            os_version="12",
            kernel="6.1.0",
            uptime_seconds=1234,
            cpu_count=4,
            memory_bytes=8 << 30,
            interfaces=[agent_pb2.NetworkInterface(name="eth0", mac="aa:bb:cc:00:00:05", addresses=["10.0.0.5/24"])],
        ),
    )


def test_a_full_observation_flattens_to_the_contracts_fact_and_detail_names() -> None:
    converted = observations_from_proto([full_device()])

    assert converted.rejected == []
    (device,) = converted.devices
    assert device.ip == "10.0.0.5"
    assert observed_facts(device) == {
        "snmp.sys_name": "web",
        "snmp.sys_descr": "Linux web",
        "snmp.sys_object_id": "1.3.6.1.4.1.8072.3.2.10",
        "snmp.sys_uptime_seconds": "1234",
        "snmp.if.eth0.mac": "aa:bb:cc:00:00:05",
        "snmp.if.eth0.speed_bps": "1000000000",
        "audit.hostname": "web",
        "audit.os_name": "Debian",
        "audit.os_version": "12",
        "audit.kernel": "6.1.0",
        "audit.uptime_seconds": "1234",
        "audit.cpu_count": "4",
        "audit.memory_bytes": str(8 << 30),
        "audit.if.eth0.mac": "aa:bb:cc:00:00:05",
        "audit.if.eth0.addresses": "10.0.0.5/24",
    }
    https, ssh = device.ports
    assert https.protocol == "tcp"
    assert port_details(https) == {
        "http.status": "200",
        "http.server": "nginx",
        "http.title": "Hi",
        "tls.subject": "CN=web",
        "tls.issuer": "CN=ca",
        "tls.not_after": "2027-01-15T08:00:00Z",
        "tls.subject_alt_names": "web,www",
    }
    assert port_details(ssh) == {
        "ssh.host_key_type": "ssh-ed25519",
        "ssh.host_key_fingerprint": "SHA256:abc",
        "ssh.host_key_changed": "true",
    }
    assert port_banner(ssh) == "SSH-2.0-OpenSSH_9.6"


def test_bad_devices_and_ports_are_left_out_and_named_the_rest_is_kept() -> None:
    converted = observations_from_proto(
        [
            agent_pb2.DeviceObservation(ip="not-an-ip"),
            agent_pb2.DeviceObservation(ip="10.0.0.1", ports=[agent_pb2.PortObservation(port=0)]),
            agent_pb2.DeviceObservation(ip="2001:DB8::0:1"),
        ]
    )

    assert [d.ip for d in converted.devices] == ["10.0.0.1", "2001:db8::1"]
    assert converted.devices[0].ports == ()
    assert converted.rejected == [
        "device ip 'not-an-ip' is not an IP address",
        "device 10.0.0.1: port 0 is outside 1-65535",
    ]


def test_text_is_bounded_and_loses_nul_characters() -> None:
    banner = "\x00SSH" + "x" * (2 * MAX_BANNER_CHARS)
    converted = observations_from_proto(
        [agent_pb2.DeviceObservation(ip="10.0.0.1", ports=[agent_pb2.PortObservation(port=22, banner=banner)])]
    )
    kept = converted.devices[0].ports[0].banner
    assert kept.startswith("SSH") and "\x00" not in kept
    assert len(kept) == MAX_BANNER_CHARS


def test_observed_at_falls_back_to_the_receive_time() -> None:
    assert observed_at_from_proto(agent_pb2.ResultBatch(), RECEIVED) == RECEIVED
    stamped = agent_pb2.ResultBatch(observed_at_unix_ms=1_767_225_600_000)
    assert observed_at_from_proto(stamped, RECEIVED) == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("AA:BB:CC:00:00:05", "aa:bb:cc:00:00:05"),
        ("aa-bb-cc-00-00-05", "aa:bb:cc:00:00:05"),
        ("aabb.cc00.0005", "aa:bb:cc:00:00:05"),
        ("00:00:00:00:00:00", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("01:00:5e:00:00:01", None),  # multicast
        ("aa:bb:cc:00:00", None),
        ("zz:bb:cc:00:00:05", None),
    ],
)
def test_mac_addresses_are_normalized_or_refused(raw: str, normal: str | None) -> None:
    assert normalize_mac(raw) == normal


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        agent_pb2.DeviceObservation,
        ip=st.text(max_size=40),
        hostname=st.text(max_size=20),
        mac_addresses=st.lists(st.text(max_size=20), max_size=3),
        ports=st.lists(
            st.builds(agent_pb2.PortObservation, port=st.integers(0, 2**32 - 1), banner=st.text(max_size=20)),
            max_size=3,
        ),
    )
)
def test_no_collector_input_makes_the_conversion_raise(device: agent_pb2.DeviceObservation) -> None:
    converted = observations_from_proto([device])
    assert len(converted.devices) + (1 if converted.rejected and not converted.devices else 0) == 1
    for observation in converted.devices:
        assert all("\x00" not in p.banner for p in observation.ports)


def test_port_states_arrive_and_an_old_collectors_unspecified_state_means_open() -> None:
    device = agent_pb2.DeviceObservation(
        ip="10.0.0.5",
        ports=[
            agent_pb2.PortObservation(port=22),
            agent_pb2.PortObservation(port=23, state=agent_pb2.PORT_STATE_OPEN),
            agent_pb2.PortObservation(port=25, state=agent_pb2.PORT_STATE_FILTERED),
            agent_pb2.PortObservation(port=26, state=agent_pb2.PORT_STATE_CLOSED),
            agent_pb2.PortObservation(port=27, state=99),  # type: ignore[arg-type]  # a newer collector's
        ],
    )
    result = observations_from_proto([device])
    [observation] = result.devices
    assert [(p.port, p.state) for p in observation.ports] == [
        (22, "open"),
        (23, "open"),
        (25, "filtered"),
        (26, "closed"),
    ]
    assert result.rejected == ["device 10.0.0.5: port 27: unknown state 99"]


def test_field_presence_tells_not_measured_from_measured_empty() -> None:
    unset = agent_pb2.DeviceObservation(ip="10.0.0.5", ports=[agent_pb2.PortObservation(port=80, http={"status": 200})])
    empty = agent_pb2.DeviceObservation(
        ip="10.0.0.5", hostname="", ports=[agent_pb2.PortObservation(port=80, http={"status": 200, "title": ""})]
    )
    [not_measured] = observations_from_proto([unset]).devices
    [measured] = observations_from_proto([empty]).devices
    assert not_measured.hostname is None and not_measured.ports[0].http is not None
    assert not_measured.ports[0].http.title is None
    assert measured.hostname == "" and measured.ports[0].http is not None and measured.ports[0].http.title == ""


def test_a_recognised_product_and_version_become_the_ports_service_details() -> None:
    device = agent_pb2.DeviceObservation(
        ip="10.0.0.6",
        ports=[
            agent_pb2.PortObservation(port=21, service="ftp", service_product="vsftpd", service_version="3.0.3"),
            agent_pb2.PortObservation(port=25, service="smtp", service_product="Postfix smtpd"),
            agent_pb2.PortObservation(port=8001),
        ],
    )
    (observation,) = observations_from_proto([device]).devices
    ftp, smtp, unknown = observation.ports

    assert (ftp.service_product, ftp.service_version) == ("vsftpd", "3.0.3")
    assert port_details(ftp) == {"service.product": "vsftpd", "service.version": "3.0.3"}
    assert port_details(smtp) == {"service.product": "Postfix smtpd"}
    assert port_details(unknown) == {}


@settings(max_examples=500)
@given(
    st.lists(
        st.integers(0, 300).map(str) | st.sampled_from(["00", "01", "007", "٣", "²", "+1", "-1", ""]),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["", " ", "\n"]),
)
def test_the_fast_ipv4_path_agrees_with_ipaddress(parts: list[str], pad: str) -> None:
    """canonical_ip and ip_sort_key skip `ipaddress` for dotted quads: same answers, same refusals."""
    raw = pad + ".".join(parts) + pad
    try:
        expected: str | None = str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            canonical_ip(raw)
        return
    assert canonical_ip(raw) == expected
    mapped = ipaddress.ip_address(expected)
    if isinstance(mapped, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + mapped.packed)
    assert ip_sort_key(expected) == mapped.packed.hex()
