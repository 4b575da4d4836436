"""The edge to the wire: job assignment -> plan, credentials, device -> protobuf."""

from __future__ import annotations

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.errors import InvalidArgument
from services.collector.discovery.model import (
    DeviceObservation,
    HostAudit,
    HttpInfo,
    NetworkInterface,
    PortObservation,
    PortState,
    SnmpFacts,
    SnmpV2cCredential,
    SnmpV3Credential,
    SshCredential,
    SshInfo,
    TlsInfo,
)
from services.collector.discovery.to_proto import (
    credentials_from_proto,
    device_to_proto,
    parse_resolver,
    plan_from_assignment,
)


def test_an_assignment_becomes_a_plan_with_defaults_for_zero_values() -> None:
    assignment = agent_pb2.JobAssignment(
        job_run_id="run-1",
        targets=["10.0.0.0/24", "10.0.1.5-20"],
        exclusions=["10.0.0.1"],
        ports=[22, 443],
        probes=["icmp", "tcp", "ssh"],
        dns_resolver="10.0.0.53:5353",
    )
    credentials = agent_pb2.CredentialSet(
        credentials=[
            agent_pb2.Credential(name="ro", snmp_v2c=agent_pb2.SnmpV2c(community="public-ish")),
            agent_pb2.Credential(name="second", snmp_v2c=agent_pb2.SnmpV2c(community="other")),
            agent_pb2.Credential(name="ops", ssh=agent_pb2.SshLogin(username="ops", password="pw")),
        ]
    )
    plan = plan_from_assignment(assignment, credentials)

    assert plan.targets == ("10.0.0.0/24", "10.0.1.5-20")
    assert plan.exclusions == ("10.0.0.1",)
    assert plan.ports == (22, 443)
    assert plan.probes == frozenset({"icmp", "tcp", "ssh"})
    assert (plan.concurrency, plan.rate_per_second, plan.timeout, plan.deadline) == (256, 0, 1.0, 3600.0)
    assert plan.batch_max_devices == 64
    assert plan.dns_resolver == ("10.0.0.53", 5353)
    assert plan.snmp == SnmpV2cCredential("public-ish")
    assert plan.ssh == SshCredential("ops", password="pw")


def test_assignment_limits_are_carried_over() -> None:
    assignment = agent_pb2.JobAssignment(
        targets=["10.0.0.1"],
        ports=[80],
        probes=["tcp"],
        concurrency=16,
        rate_per_second=100,
        timeout_ms=250,
        deadline_seconds=60,
        batch_max_devices=10,
    )
    plan = plan_from_assignment(assignment)
    assert (plan.concurrency, plan.rate_per_second, plan.timeout, plan.deadline) == (16, 100, 0.25, 60.0)
    assert plan.batch_max_devices == 10
    assert plan.snmp is None and plan.ssh is None and plan.dns_resolver is None


def test_v3_and_key_credentials() -> None:
    credential_set = agent_pb2.CredentialSet(
        credentials=[
            agent_pb2.Credential(
                snmp_v3=agent_pb2.SnmpV3(
                    username="mon", auth_protocol="SHA256", auth_key="a" * 8, priv_protocol="AES256", priv_key="p" * 8
                )
            ),
            agent_pb2.Credential(ssh=agent_pb2.SshLogin(username="root", private_key_pem="PEM", passphrase="x")),
            agent_pb2.Credential(name="unknown kind"),
        ]
    )
    assert credentials_from_proto(credential_set) == (
        SnmpV3Credential("mon", "SHA256", "a" * 8, "AES256", "p" * 8),
        SshCredential("root", private_key_pem="PEM", passphrase="x"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), ("10.0.0.53", ("10.0.0.53", 53)), ("ns:5300", ("ns", 5300)), ("[fd00::53]:53", ("fd00::53", 53))],
)
def test_parse_resolver(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize("text", ["10.0.0.53:abc", "10.0.0.53:0", ":53"])
def test_bad_resolvers_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_resolver(text)


def test_a_device_becomes_its_protobuf_message_field_for_field() -> None:
    lo = NetworkInterface("lo", "", ("127.0.0.1/8",), "lo", 10_000_000)
    device = DeviceObservation(
        ip="10.0.0.5",
        alive_by="icmp",
        hostname="web-1.lab.test",
        rtt_ms=0.25,
        ports=(
            PortObservation(
                22, service="ssh", banner="SSH-2.0-x", ssh=SshInfo("SSH-2.0-x", "ssh-ed25519", "SHA256:k", True)
            ),
            PortObservation(
                443,
                service="https",
                banner="HTTP/1.1 200 OK",
                http=HttpInfo(200, "nginx", "Home"),
                tls=TlsInfo("CN=web", "CN=ca", 1_900_000_000, ("web", "10.0.0.5")),
            ),
        ),
        snmp=SnmpFacts("web-1", "Linux", "1.3.6.1.4.1.8072.3.2.10", 12345, "80001f88", (lo,)),
        audit=HostAudit("web-1", "Debian GNU/Linux", "12", "6.1.0", 100, 4, 8 << 30, (lo,)),
        mac_addresses=("02:42:ac:11:00:02",),
        notes=("icmp: note",),
    )
    message = device_to_proto(device)

    expected_lo = agent_pb2.NetworkInterface(
        name="lo", mac="", addresses=["127.0.0.1/8"], description="lo", speed_bps=10_000_000
    )
    assert message == agent_pb2.DeviceObservation(
        ip="10.0.0.5",
        hostname="web-1.lab.test",
        alive_by="icmp",
        rtt_ms=0.25,
        ports=[
            agent_pb2.PortObservation(
                port=22,
                protocol="tcp",
                service="ssh",
                banner="SSH-2.0-x",
                state=agent_pb2.PORT_STATE_OPEN,
                ssh=agent_pb2.SshInfo(
                    banner="SSH-2.0-x",
                    host_key_type="ssh-ed25519",
                    host_key_fingerprint="SHA256:k",
                    host_key_changed=True,
                ),
            ),
            agent_pb2.PortObservation(
                port=443,
                protocol="tcp",
                service="https",
                banner="HTTP/1.1 200 OK",
                state=agent_pb2.PORT_STATE_OPEN,
                http=agent_pb2.HttpInfo(status=200, server="nginx", title="Home"),
                tls=agent_pb2.TlsInfo(
                    subject="CN=web",
                    issuer="CN=ca",
                    not_after_unix=1_900_000_000,
                    subject_alt_names=["web", "10.0.0.5"],
                ),
            ),
        ],
        snmp=agent_pb2.SnmpFacts(
            sys_name="web-1",
            sys_descr="Linux",
            sys_object_id="1.3.6.1.4.1.8072.3.2.10",
            sys_uptime_centiseconds=12345,
            engine_id="80001f88",
            interfaces=[expected_lo],
        ),
        audit=agent_pb2.HostAudit(
            hostname="web-1",
            os_name="Debian GNU/Linux",
            os_version="12",
            kernel="6.1.0",
            uptime_seconds=100,
            cpu_count=4,
            memory_bytes=8 << 30,
            interfaces=[expected_lo],
        ),
        mac_addresses=["02:42:ac:11:00:02"],
        notes=["icmp: note"],
    )


def test_a_device_without_snmp_or_audit_leaves_those_fields_unset() -> None:
    message = device_to_proto(DeviceObservation(ip="10.0.0.5", alive_by="tcp"))
    assert not message.HasField("snmp") and not message.HasField("audit")


def test_not_measured_is_unset_and_measured_empty_is_set_to_empty() -> None:
    unmeasured = device_to_proto(
        DeviceObservation(ip="10.0.0.5", alive_by="tcp", ports=(PortObservation(80, http=HttpInfo(200)),))
    )
    assert not unmeasured.HasField("hostname") and not unmeasured.ports[0].http.HasField("title")
    empty = device_to_proto(
        DeviceObservation(
            ip="10.0.0.5", alive_by="tcp", hostname="", ports=(PortObservation(80, http=HttpInfo(200, "", "")),)
        )
    )
    assert empty.HasField("hostname") and empty.hostname == ""
    assert empty.ports[0].http.HasField("title") and empty.ports[0].http.title == ""


def test_filtered_ports_are_sent_with_their_state() -> None:
    message = device_to_proto(
        DeviceObservation(ip="10.0.0.5", alive_by="icmp", ports=(PortObservation(25, state=PortState.FILTERED),))
    )
    assert [(p.port, p.state) for p in message.ports] == [(25, agent_pb2.PORT_STATE_FILTERED)]


def test_a_recognised_product_and_version_travel_in_their_own_fields() -> None:
    device = DeviceObservation(
        ip="10.0.0.6",
        alive_by="tcp",
        ports=(PortObservation(21, service="ftp", service_product="vsftpd", service_version="3.0.3"),),
    )
    (port,) = device_to_proto(device).ports
    assert (port.service, port.service_product, port.service_version) == ("ftp", "vsftpd", "3.0.3")
