"""The collector's address behind a load balancer: only a trusted proxy may name it (ADR 0026).

A real control plane whose gateway reads PROXY protocol headers on its TCP listener
(`--tcp-proxy-protocol`) from 127.0.0.2 only (`--trusted-proxies 127.0.0.2/32`); the
test's own sockets come from 127.0.0.1, an untrusted address. The attacker's view first:
a PROXY header claiming another address from an untrusted peer is refused and costs the
peer; malformed and truncated headers from the trusted balancer close the connection and
the gateway serves on. Then the operator's: through the balancer, an enrollment token's
`--cidr` sees the client the balancer names (admitted in the network, refused outside
it), while a collector dialling the same listener directly keeps its own address.
HTTP: a `X-Forwarded-For` from an untrusted peer is ignored, a trusted one's is read.
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.gateway.transports.client_address import TrustedProxies
from services.gateway.transports.proxy_protocol import V2_SIGNATURE, encode_v1, encode_v2
from services.gateway.transports.websocket import request_client
from tests.e2e.test_enrollment_tokens import refusal, token_file
from tests.peers.proxy_protocol_balancer import TRUSTED_SOURCE, ProxyProtocolBalancer
from tests.process_harness import Collector, ControlPlane, wait_for
from tests.tls_certs import make_pki

PASSWORD = "balancer-Pa55word-91c"
HEADER_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("balancer")
    control = ControlPlane(
        directory / "server",
        f"sqlite+aiosqlite:///{directory / 'outpost.db'}",
        gateway_args=[
            "--tcp-proxy-protocol",
            "--trusted-proxies",
            f"{TRUSTED_SOURCE}/32",
            "--handshake-timeout",
            str(HEADER_TIMEOUT),
        ],
    ).start()
    try:
        yield control
    finally:
        control.stop()


def tcp_address(plane: ControlPlane) -> tuple[str, int]:
    host, _, port = plane.gateways[0].ready["tcp"].rpartition(":")
    return host, int(port)


def metric(plane: ControlPlane, name: str, labels: str) -> float:
    text = urllib.request.urlopen(f"http://{plane.gateway_ready['metrics']}/metrics", timeout=5).read().decode()
    prefix = f"{name}{{{labels}}} "
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


def gateway_events(plane: ControlPlane, event: str) -> list[dict[str, Any]]:
    return [e for e in plane.gateways[0].log_events() if e.get("event") == event]


def send_and_wait_for_close(
    plane: ControlPlane, data: bytes, *, source: str = "127.0.0.1", timeout: float = 10.0
) -> bytes:
    """Connect from `source`, send `data`, read until the gateway closes; what it sent back.

    A close with our bytes unread is a reset (RST) rather than an end of stream: both are closed.
    """
    received = b""
    with socket.create_connection(tcp_address(plane), timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(data)
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return received


def assert_gateway_serves(plane: ControlPlane) -> None:
    assert plane.gateways[0].alive()
    assert plane.ctl("server", "info").returncode == 0


# --- the attacker's view ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [encode_v1(("10.20.30.40", 1234), ("127.0.0.1", 6600)), encode_v2(("10.20.30.40", 1234), ("127.0.0.1", 6600))],
    ids=["v1", "v2"],
)
def test_a_spoofed_proxy_header_from_an_untrusted_address_is_refused(plane: ControlPlane, header: bytes) -> None:
    before = metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="untrusted"')

    received = send_and_wait_for_close(plane, header + b"\x00\x00\x00\x10" + bytes(16))

    assert received == b""  # closed before any session: not even a Disconnect to read
    wait_for(
        lambda: metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="untrusted"') == before + 1,
        10,
        what="the refusal to be counted",
    )
    refused = gateway_events(plane, "proxy_header_refused")[-1]
    assert refused["reason"] == "untrusted"
    assert refused["peer"].startswith("127.0.0.1:")
    assert "not in --trusted-proxies" in refused["message"]
    assert_gateway_serves(plane)


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n",
        b"PROXY TCP4 10.0.0.1 127.0.0.1 1 2\n" + b"x" * 120,
        b"PROXY " + b"A" * 150,
        V2_SIGNATURE + bytes([0x21, 0x11]) + (65000).to_bytes(2, "big"),
        V2_SIGNATURE + bytes([0x31, 0x11]) + (12).to_bytes(2, "big") + bytes(12),
        V2_SIGNATURE + bytes([0x21, 0x11]) + (8).to_bytes(2, "big") + bytes(8),
        b"\x00\x00\x00\x10" + bytes(16),  # a trusted peer must send the header: none is malformed
    ],
    ids=["v1-bad-address", "v1-no-crlf", "v1-too-long", "v2-too-long", "v2-bad-version", "v2-short-block", "none"],
)
def test_a_malformed_header_from_the_trusted_balancer_closes_the_connection(plane: ControlPlane, header: bytes) -> None:
    before = metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="malformed"')

    assert send_and_wait_for_close(plane, header, source=TRUSTED_SOURCE) == b""

    wait_for(
        lambda: metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="malformed"') == before + 1,
        10,
        what="the malformed header to be counted",
    )
    assert_gateway_serves(plane)


@pytest.mark.parametrize(
    "header",
    [encode_v1(("10.0.0.1", 1), ("127.0.0.1", 2))[:20], encode_v2(("10.0.0.1", 1), ("127.0.0.1", 2))[:20], b""],
    ids=["v1", "v2", "nothing"],
)
def test_a_truncated_header_times_out_and_closes(plane: ControlPlane, header: bytes) -> None:
    before = metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="timeout"')

    assert send_and_wait_for_close(plane, header, source=TRUSTED_SOURCE, timeout=HEADER_TIMEOUT + 8) == b""

    assert metric(plane, "outpost_gateway_proxy_headers_refused_total", 'reason="timeout"') == before + 1
    assert_gateway_serves(plane)


# --- the operator's view: the enrollment token's network is the real client's ------------------
def create_token(plane: ControlPlane, name: str, cidr: str) -> str:
    out = plane.ctl("enrollment-tokens", "create", name, "--zone", "lab", "--cidr", cidr, "--json").stdout
    return str(json.loads(out)["enrollment_token"])


def collector_via(plane: ControlPlane, tmp_path: Path, name: str, server: str, token: str) -> Collector:
    return Collector(
        tmp_path / name,
        name,
        [server],
        PASSWORD,
        access_key_file=plane.access_key_file,
        extra_args=["--enrollment-token-file", str(token_file(tmp_path, token))],
    ).start()


def collectors(plane: ControlPlane) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(plane.ctl("collectors", "list", "--json").stdout)}


@pytest.mark.parametrize("version", [1, 2])
def test_through_the_balancer_the_tokens_cidr_sees_the_real_client(
    plane: ControlPlane, tmp_path: Path, version: int
) -> None:
    token = create_token(plane, f"branch-{version}", "203.0.113.0/24")
    gateway = plane.gateways[0].ready["tcp"]
    inside = ProxyProtocolBalancer(gateway, ("203.0.113.7", 40000 + version), version=version).start()
    outside = ProxyProtocolBalancer(gateway, ("198.51.100.9", 40000 + version), version=version).start()
    admitted = collector_via(plane, tmp_path / "in", f"edge-branch-in-{version}", f"tcp://{inside.address}", token)
    refused = collector_via(plane, tmp_path / "out", f"edge-branch-out-{version}", f"tcp://{outside.address}", token)
    try:
        admitted.wait_state("enabled")
        assert collectors(plane)[admitted.name]["remote_address"] == f"203.0.113.7:{40000 + version}"

        message = str(refusal(refused)["message"])
        assert "connected from 198.51.100.9" in message, message
        assert refused.name not in collectors(plane)
    finally:
        admitted.stop()
        refused.stop()
        inside.stop()
        outside.stop()


def test_a_collector_dialling_the_listener_directly_keeps_its_own_address(plane: ControlPlane, tmp_path: Path) -> None:
    token = create_token(plane, "direct", "203.0.113.0/24")
    direct = collector_via(plane, tmp_path, "edge-direct", plane.url("tcp"), token)
    try:
        message = str(refusal(direct)["message"])
    finally:
        direct.stop()
    assert "connected from 127.0.0.1" in message, message  # its own address, outside the token's network


# --- HTTP: forwarded headers ------------------------------------------------------------------
async def _client_seen(headers: dict[str, str], source: str) -> str:
    """What `request_client` (the WebSocket and poll routes' reading) makes of one real request."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request_client(request, TrustedProxies.parse(f"{TRUSTED_SOURCE}/32")))

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        connector = aiohttp.TCPConnector(local_addr=(source, 0))
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get(f"http://127.0.0.1:{port}/", headers=headers) as response,
        ):
            return await response.text()
    finally:
        await runner.cleanup()


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    seen = asyncio.run(_client_seen({"X-Forwarded-For": "203.0.113.7"}, "127.0.0.1"))
    assert seen.startswith("127.0.0.1:")
    seen = asyncio.run(_client_seen({"Forwarded": "for=203.0.113.7"}, "127.0.0.1"))
    assert seen.startswith("127.0.0.1:")


def test_x_forwarded_for_from_the_trusted_ingress_names_the_rightmost_untrusted_hop() -> None:
    assert asyncio.run(_client_seen({"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}, TRUSTED_SOURCE)) == "203.0.113.7"


# --- TLS: the header comes in the clear before the TLS handshake; direct TLS clients are peeked --
def test_with_tls_the_balancers_header_precedes_the_handshake_and_direct_clients_still_connect(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    tls_plane = ControlPlane(
        tmp_path / "server",
        f"sqlite+aiosqlite:///{tmp_path / 'outpost.db'}",
        gateway_args=["--tcp-proxy-protocol", "--trusted-proxies", f"{TRUSTED_SOURCE}/32"],
    ).start(tls=(pki.cert_file, pki.key_file))
    balancer = ProxyProtocolBalancer(tls_plane.gateways[0].ready["tcp"], ("203.0.113.77", 50123), version=2).start()
    tls_args = ["--ca-file", str(pki.ca_file)]
    proxied = Collector(
        tmp_path / "p",
        "edge-tls-proxied",
        [f"tls://{balancer.address}"],
        PASSWORD,
        access_key_file=tls_plane.access_key_file,
        extra_args=tls_args,
    ).start()
    direct = Collector(
        tmp_path / "d", "edge-tls-direct", [tls_plane.url("tcp", tls=True)], PASSWORD, extra_args=tls_args
    ).start()
    try:
        proxied.wait_state("pending")
        direct.wait_state("pending")
        listed = collectors(tls_plane)
        assert listed["edge-tls-proxied"]["remote_address"] == "203.0.113.77:50123"
        assert listed["edge-tls-direct"]["remote_address"].startswith("127.0.0.1:")
    finally:
        proxied.stop()
        direct.stop()
        balancer.stop()
        tls_plane.stop()
