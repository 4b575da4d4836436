"""Banners from real servers: what discovery reports equals what the servers send."""

from __future__ import annotations

import http.client
import socket

from cryptography import x509

from services.collector.discovery import DiscoveryPlan, HttpInfo
from tests import tls_certs
from tests.integration.discovery.conftest import WEB_HOST, Scan
from tests.peers.sshd import SshServer
from tests.peers.tcp import TcpListeners
from tests.peers.web import WebServer


def http_oracle(server: WebServer) -> tuple[int, str, str]:
    """(status, reason, Server header) as the stdlib's HTTP client sees them."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.reason, response.getheader("Server", "")
    finally:
        connection.close()


def ssh_identification(server: SshServer) -> str:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        return sock.makefile("rb").readline().decode().rstrip("\r\n")


async def test_http_and_tls_on_unknown_ports_are_recognised_by_listening(
    web_server: WebServer, tls_server: WebServer, pki: tls_certs.TestPki, scan: Scan
) -> None:
    plan = DiscoveryPlan(
        targets=(WEB_HOST,),
        exclusions=(),
        ports=(web_server.port, tls_server.port),
        probes=frozenset({"tcp", "banners"}),
        timeout=2.0,
    )
    device = (await scan(plan))[WEB_HOST]
    by_port = {port.port: port for port in device.ports}

    status, reason, server_header = http_oracle(web_server)
    plain = by_port[web_server.port]
    assert plain.service == "http"
    assert plain.http == HttpInfo(status=status, server=server_header, title=web_server.title)
    assert plain.banner == f"HTTP/1.1 {status} {reason}"
    assert plain.tls is None

    certificate = x509.load_pem_x509_certificate(pki.cert_file.read_bytes())
    secure = by_port[tls_server.port]
    assert secure.service == "https"
    assert secure.tls is not None
    assert secure.tls.subject == certificate.subject.rfc4514_string() == "CN=localhost"
    assert secure.tls.issuer == certificate.issuer.rfc4514_string() == "CN=Outpost test CA"
    assert secure.tls.not_after_unix == int(certificate.not_valid_after_utc.timestamp())
    assert set(secure.tls.subject_alt_names) == {"localhost", "127.0.0.1"}
    assert secure.http == HttpInfo(status=200, server=tls_server.server_header, title=tls_server.title)


async def test_ssh_on_an_unknown_port_is_recognised_by_its_identification_line(sshd: SshServer, scan: Scan) -> None:
    plan = DiscoveryPlan(
        targets=(sshd.host,), exclusions=(), ports=(sshd.port,), probes=frozenset({"tcp", "banners"}), timeout=2.0
    )
    (port,) = (await scan(plan))[sshd.host].ports

    expected = ssh_identification(sshd)
    assert expected.startswith("SSH-2.0-OpenSSH")
    assert port.service == "ssh"
    assert port.banner == expected
    assert port.ssh is not None and port.ssh.banner == expected
    assert port.ssh.host_key_fingerprint == ""  # the banner probe does not do a key exchange


async def test_a_silent_service_that_hangs_up_is_an_open_port_without_banner(
    tcp_listeners: TcpListeners, scan: Scan
) -> None:
    port = tcp_listeners.open("127.0.0.49")
    plan = DiscoveryPlan(
        targets=("127.0.0.49",), exclusions=(), ports=(port,), probes=frozenset({"tcp", "banners"}), timeout=1.0
    )
    (observed,) = (await scan(plan))["127.0.0.49"].ports

    assert observed.port == port
    assert (observed.banner, observed.http, observed.tls, observed.ssh) == ("", None, None, None)
