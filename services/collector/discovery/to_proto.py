"""The edge between the discovery engine and the wire: the only module here that imports protobuf.

- `plan_from_assignment`: a `JobAssignment` (plus its opened `CredentialSet`) -> `DiscoveryPlan`,
  with the contract's zero values meaning "the default".
- `credentials_from_proto`: `Credential` messages -> credential dataclasses.
- `device_to_proto`: `DeviceObservation` -> `agent_pb2.DeviceObservation`.
"""

from __future__ import annotations

from outpost.agent.v1 import agent_pb2
from outpost.errors import InvalidArgument
from services.collector.discovery.model import (
    DeviceObservation,
    DiscoveryPlan,
    HostAudit,
    NetworkInterface,
    PortObservation,
    PortState,
    SnmpCredential,
    SnmpFacts,
    SnmpV2cCredential,
    SnmpV3Credential,
    SshCredential,
)

Credential = SnmpV2cCredential | SnmpV3Credential | SshCredential

DEFAULT_CONCURRENCY = 256
DEFAULT_TIMEOUT = 1.0
DEFAULT_DEADLINE = 3600.0
DEFAULT_BATCH_MAX_DEVICES = 64


def credential_from_proto(credential: agent_pb2.Credential) -> Credential | None:
    """One credential; None for a kind this collector does not know (a newer server's)."""
    kind = credential.WhichOneof("kind")
    if kind == "snmp_v2c":
        return SnmpV2cCredential(community=credential.snmp_v2c.community)
    if kind == "snmp_v3":
        v3 = credential.snmp_v3
        return SnmpV3Credential(
            username=v3.username,
            auth_protocol=v3.auth_protocol,
            auth_key=v3.auth_key,
            priv_protocol=v3.priv_protocol,
            priv_key=v3.priv_key,
        )
    if kind == "ssh":
        return SshCredential(
            username=credential.ssh.username,
            password=credential.ssh.password,
            private_key_pem=credential.ssh.private_key_pem,
            passphrase=credential.ssh.passphrase,
        )
    return None


DEFAULT_SNMP_PORT = 161
DEFAULT_SSH_PORT = 22


def credentials_from_proto(credential_set: agent_pb2.CredentialSet) -> tuple[Credential, ...]:
    found = (credential_from_proto(credential) for credential in credential_set.credentials)
    return tuple(credential for credential in found if credential is not None)


def plan_from_assignment(
    assignment: agent_pb2.JobAssignment, credentials: agent_pb2.CredentialSet | None = None
) -> DiscoveryPlan:
    """The plan a job assignment asks for; the first SNMP and the first SSH credential are used.

    Raises InvalidArgument for a malformed assignment (bad resolver address, bad port, a
    credential that is incomplete).
    """
    opened = credentials_from_proto(credentials) if credentials is not None else ()
    snmp: SnmpCredential | None = next((c for c in opened if isinstance(c, SnmpV2cCredential | SnmpV3Credential)), None)
    ssh = next((c for c in opened if isinstance(c, SshCredential)), None)
    return DiscoveryPlan(
        targets=tuple(assignment.targets),
        exclusions=tuple(assignment.exclusions),
        ports=tuple(assignment.ports),
        probes=frozenset(assignment.probes),
        concurrency=assignment.concurrency or DEFAULT_CONCURRENCY,
        rate_per_second=assignment.rate_per_second,
        timeout=assignment.timeout_ms / 1000 if assignment.timeout_ms else DEFAULT_TIMEOUT,
        deadline=float(assignment.deadline_seconds or DEFAULT_DEADLINE),
        dns_resolver=parse_resolver(assignment.dns_resolver),
        snmp=snmp,
        ssh=ssh,
        batch_max_devices=assignment.batch_max_devices or DEFAULT_BATCH_MAX_DEVICES,
        snmp_port=assignment.snmp_port or DEFAULT_SNMP_PORT,
        ssh_port=assignment.ssh_port or DEFAULT_SSH_PORT,
    )


def parse_resolver(text: str) -> tuple[str, int] | None:
    """ "host:port", "[v6]:port" or a bare host (port 53); "" means the system's resolver."""
    text = text.strip()
    if not text:
        return None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else 53
    except ValueError as exc:
        raise InvalidArgument(f"DNS resolver {text!r}: the port is not a number") from exc
    if not host or not 1 <= port <= 65535:
        raise InvalidArgument(f"DNS resolver {text!r} is not host:port")
    return host, port


def device_to_proto(device: DeviceObservation) -> agent_pb2.DeviceObservation:
    message = agent_pb2.DeviceObservation(
        ip=device.ip,
        hostname=device.hostname,  # None leaves it unset: not measured
        alive_by=device.alive_by,
        rtt_ms=device.rtt_ms,
        ports=[_port(port) for port in device.ports],
        mac_addresses=list(device.mac_addresses),
        notes=list(device.notes),
        observed_at_unix_ms=device.observed_at_unix_ms,
    )
    if device.snmp is not None:
        message.snmp.CopyFrom(_snmp(device.snmp))
    if device.audit is not None:
        message.audit.CopyFrom(_audit(device.audit))
    return message


_PORT_STATES = {
    PortState.OPEN: agent_pb2.PORT_STATE_OPEN,
    PortState.CLOSED: agent_pb2.PORT_STATE_CLOSED,
    PortState.FILTERED: agent_pb2.PORT_STATE_FILTERED,
}


def _port(port: PortObservation) -> agent_pb2.PortObservation:
    message = agent_pb2.PortObservation(
        port=port.port,
        protocol=port.protocol,
        service=port.service,
        banner=port.banner,
        state=_PORT_STATES[port.state],
        service_product=port.service_product,
        service_version=port.service_version,
    )
    if port.http is not None:
        message.http.CopyFrom(
            agent_pb2.HttpInfo(status=port.http.status, server=port.http.server, title=port.http.title)
        )
    if port.tls is not None:
        message.tls.CopyFrom(
            agent_pb2.TlsInfo(
                subject=port.tls.subject,
                issuer=port.tls.issuer,
                not_after_unix=port.tls.not_after_unix,
                subject_alt_names=list(port.tls.subject_alt_names),
            )
        )
    if port.ssh is not None:
        message.ssh.CopyFrom(
            agent_pb2.SshInfo(
                banner=port.ssh.banner,
                host_key_type=port.ssh.host_key_type,
                host_key_fingerprint=port.ssh.host_key_fingerprint,
                host_key_changed=port.ssh.host_key_changed,
            )
        )
    return message


def _interface(interface: NetworkInterface) -> agent_pb2.NetworkInterface:
    return agent_pb2.NetworkInterface(
        name=interface.name,
        mac=interface.mac,
        addresses=list(interface.addresses),
        description=interface.description,
        speed_bps=interface.speed_bps,
    )


def _snmp(facts: SnmpFacts) -> agent_pb2.SnmpFacts:
    return agent_pb2.SnmpFacts(
        sys_name=facts.sys_name,
        sys_descr=facts.sys_descr,
        sys_object_id=facts.sys_object_id,
        sys_uptime_centiseconds=facts.sys_uptime_centiseconds,
        engine_id=facts.engine_id,
        interfaces=[_interface(interface) for interface in facts.interfaces],
    )


def _audit(audit: HostAudit) -> agent_pb2.HostAudit:
    return agent_pb2.HostAudit(
        hostname=audit.hostname,
        os_name=audit.os_name,
        os_version=audit.os_version,
        kernel=audit.kernel,
        uptime_seconds=audit.uptime_seconds,
        cpu_count=audit.cpu_count,
        memory_bytes=audit.memory_bytes,
        interfaces=[_interface(interface) for interface in audit.interfaces],
    )
