"""Synthetic discovery results: what a collector's scan of a busy network sends, deterministically.

Device `n` of a run is IPv4 `10.0.0.0 + n` (the caller chooses `n` so no two devices of a
bench share an address), answering on one to five TCP ports (2.8 on average, cycling
through `PORT_SETS`) with the banners the collector's probes record for common servers:
OpenSSH with its host key, nginx and Apache with HTTP status and title, TLS with subject,
issuer, expiry and SANs, a MySQL greeting, RDP without a banner. Each device has a
reverse-DNS name, one locally administered MAC address derived from its IP (unique, so
it identifies the device and exercises the inventory's MAC lookup), and every eighth
one SNMP facts with a unique engine id. The same `n` always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterator

from outpost.agent.v1 import agent_pb2

BASE = int(ipaddress.IPv4Address("10.0.0.0"))
CAPACITY = 2**24
"""Devices that fit in 10.0.0.0/8."""
SSH = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
NOT_AFTER = 1_798_761_600  # 2027-01-01
PORT_SETS: tuple[tuple[int, ...], ...] = (
    (22,),
    (22, 80),
    (22, 80, 443),
    (22, 443, 3306),
    (22, 80, 443, 3389, 8080),
)
SCANNED_PORTS = sorted({port for ports in PORT_SETS for port in ports})
"""The discovery's port list: every port a synthetic device can answer on."""


def ip_of(n: int) -> str:
    if not 0 <= n < CAPACITY:
        raise ValueError(f"device {n} does not fit in 10.0.0.0/8")
    return str(ipaddress.IPv4Address(BASE + n))


def _fingerprint(ip: str) -> str:
    digest = hashlib.sha256(ip.encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _port(port: int, ip: str, host: str) -> agent_pb2.PortObservation:
    if port == 22:
        return agent_pb2.PortObservation(
            port=22,
            protocol="tcp",
            service="ssh",
            banner=SSH,
            ssh=agent_pb2.SshInfo(banner=SSH, host_key_type="ssh-ed25519", host_key_fingerprint=_fingerprint(ip)),
        )
    if port == 80:
        return agent_pb2.PortObservation(
            port=80,
            protocol="tcp",
            service="http",
            banner="HTTP/1.1 200 OK",
            http=agent_pb2.HttpInfo(status=200, server="nginx/1.22.1", title="Welcome to nginx!"),
        )
    if port == 443:
        return agent_pb2.PortObservation(
            port=443,
            protocol="tcp",
            service="https",
            banner="HTTP/1.1 302 Found",
            http=agent_pb2.HttpInfo(status=302, server="Apache/2.4.57 (Debian)", title="Sign in"),
            tls=agent_pb2.TlsInfo(
                subject=f"CN={host}",
                issuer="CN=Example Lab Issuing CA 2,O=Example Corp,C=DE",
                not_after_unix=NOT_AFTER,
                subject_alt_names=[host, ip],
            ),
        )
    if port == 3306:
        return agent_pb2.PortObservation(
            port=3306, protocol="tcp", service="mysql", banner="5.5.5-10.11.6-MariaDB-0+deb12u1"
        )
    if port == 8080:
        return agent_pb2.PortObservation(
            port=8080,
            protocol="tcp",
            service="http",
            banner="HTTP/1.1 401 Unauthorized",
            http=agent_pb2.HttpInfo(status=401, server="Jetty(9.4.53.v20231009)", title="Error 401 Unauthorized"),
        )
    return agent_pb2.PortObservation(port=port, protocol="tcp", service="ms-wbt-server")


def device(n: int) -> agent_pb2.DeviceObservation:
    """Synthetic device `n` (see the module docstring)."""
    ip = ip_of(n)
    host = "host-" + ip.replace(".", "-") + ".lab.example.net"
    address = BASE + n
    mac = "02:00:" + ":".join(f"{(address >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))
    observation = agent_pb2.DeviceObservation(
        ip=ip,
        hostname=host,
        alive_by="tcp",
        rtt_ms=0.4 + (n % 50) / 10,
        ports=[_port(port, ip, host) for port in PORT_SETS[n % len(PORT_SETS)]],
        mac_addresses=[mac],
    )
    if n % 8 == 0:
        observation.snmp.CopyFrom(
            agent_pb2.SnmpFacts(
                sys_name=host.split(".", 1)[0],
                sys_descr="Linux " + host.split(".", 1)[0] + " 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian x86_64",
                sys_object_id="1.3.6.1.4.1.8072.3.2.10",
                sys_uptime_centiseconds=360_000 + n,
                engine_id=f"80001f8880{address:08x}",
            )
        )
    return observation


def ports_of(n: int) -> int:
    return len(PORT_SETS[n % len(PORT_SETS)])


def batches(
    job_run_id: str, attempt: int, first: int, count: int, per_batch: int, observed_at_ms: int
) -> Iterator[agent_pb2.ResultBatch]:
    """`count` batches of `per_batch` devices from device `first` on, numbered 1, 2, ..."""
    for index in range(count):
        start = first + index * per_batch
        yield agent_pb2.ResultBatch(
            job_run_id=job_run_id,
            sequence=index + 1,
            attempt=attempt,
            observed_at_unix_ms=observed_at_ms,
            devices=[device(n) for n in range(start, start + per_batch)],
        )
