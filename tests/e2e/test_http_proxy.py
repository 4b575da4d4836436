"""A collector behind an HTTP proxy: HTTPS_PROXY/HTTP_PROXY/NO_PROXY, with a real tinyproxy on loopback.

Every transport tunnels through the proxy with CONNECT (transport.proxy): the proxy's log
must show the tunnel to the gateway's port, and the collector must reach it (pending). The
proxy demands Basic credentials, which the collector sends but never logs. With NO_PROXY
covering the gateway the proxy sees nothing. The proxy variables go only into the
collector's environment: the control plane and outpostctl calls of the test dial directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.http_proxy import HttpProxy
from tests.process_harness import Collector, ControlPlane, wait_for
from tests.tls_certs import make_pki

PROXY_PASSWORD = "proxy-s3cret-pw"
TRANSPORTS = [
    ("websocket", False),
    ("websocket", True),
    ("http_poll", False),
    ("http_poll", True),
    ("tcp", False),
    ("tcp", True),
    ("grpc", False),
    ("grpc", True),
]
PORT_OF = {"websocket": "websocket", "http_poll": "websocket", "tcp": "tcp", "grpc": "grpc"}


@pytest.fixture(scope="module")
def planes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, tuple[ControlPlane, Path]]]:
    """A plain control plane and one whose gateway serves TLS on every agent listener; and the CA."""
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "grpc_proxy"):
        assert not os.environ.get(variable), f"{variable} is set for the test run: the control plane would use it"
    directory = tmp_path_factory.mktemp("proxy-planes")
    pki = make_pki(directory / "pki")
    started: dict[bool, tuple[ControlPlane, Path]] = {}
    try:
        for tls in (False, True):
            plane = ControlPlane(directory / f"server-{tls}", f"sqlite+aiosqlite:///{directory / f'outpost-{tls}.db'}")
            started[tls] = (plane, pki.ca_file)
            plane.start(tls=(pki.cert_file, pki.key_file) if tls else None)
        yield started
    finally:
        for plane, _ in started.values():
            plane.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpProxy]:
    server = HttpProxy(tmp_path_factory.mktemp("tinyproxy"), username="collector", password=PROXY_PASSWORD).start()
    try:
        yield server
    finally:
        server.stop()


def gateway_port(plane: ControlPlane, transport: str) -> str:
    return str(plane.gateways[0].ready[PORT_OF[transport]]).rsplit(":", 1)[1]


def start_collector(
    plane: ControlPlane, ca_file: Path, tmp_path: Path, name: str, transport: str, tls: bool, env: dict[str, str]
) -> Collector:
    return Collector(
        tmp_path,
        name,
        [plane.url(transport, tls=tls)],
        "pw",
        extra_args=["--ca-file", str(ca_file)],
        env=env,
    ).start()


@pytest.mark.parametrize(
    ("transport", "tls"), TRANSPORTS, ids=[f"{t}-{'tls' if s else 'plain'}" for t, s in TRANSPORTS]
)
def test_https_proxy_carries_every_transport_as_a_connect_tunnel(
    planes: dict[bool, tuple[ControlPlane, Path]], proxy: HttpProxy, tmp_path: Path, transport: str, tls: bool
) -> None:
    control_plane, ca_file = planes[tls]
    tunnel = f"CONNECT 127.0.0.1:{gateway_port(control_plane, transport)} HTTP/1.1"
    before = proxy.requests().count(tunnel)
    collector = start_collector(
        control_plane, ca_file, tmp_path, f"proxied-{transport}-{tls}", transport, tls, {"HTTPS_PROXY": proxy.url}
    )
    try:
        collector.wait_state("pending")
        assert proxy.requests().count(tunnel) > before, proxy.requests()
        routes = [e for e in collector.log_events() if e.get("event") == "server_route_chosen"]
        assert routes == [
            {
                **routes[0],
                "proxy": f"http://127.0.0.1:{proxy.port} (with credentials)",
                "variable": "HTTPS_PROXY",
            }
        ]
        assert PROXY_PASSWORD not in collector.process.log()  # type: ignore[union-attr]
    finally:
        collector.stop()


@pytest.mark.parametrize(
    ("transport", "no_proxy"), [("websocket", "127.0.0.1"), ("http_poll", "127.0.0.0/8"), ("grpc", "127.0.0.1")]
)
def test_no_proxy_covering_the_gateway_bypasses_the_proxy(
    planes: dict[bool, tuple[ControlPlane, Path]], proxy: HttpProxy, tmp_path: Path, transport: str, no_proxy: str
) -> None:
    control_plane, ca_file = planes[False]
    tunnel = f"CONNECT 127.0.0.1:{gateway_port(control_plane, transport)}"
    seen = len(proxy.requests())
    collector = start_collector(
        control_plane,
        ca_file,
        tmp_path,
        f"direct-{transport}",
        transport,
        False,
        {"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy},
    )
    try:
        collector.wait_state("pending")
        assert not [r for r in proxy.requests()[seen:] if r.startswith(tunnel)]
        routes = [e for e in collector.log_events() if e.get("event") == "server_route_chosen"]
        assert [(r["proxy"], r.get("reason")) for r in routes] == [(None, "NO_PROXY")]
    finally:
        collector.stop()


def test_a_proxy_that_refuses_the_credentials_leaves_the_collector_retrying_with_the_reason(
    planes: dict[bool, tuple[ControlPlane, Path]], proxy: HttpProxy, tmp_path: Path
) -> None:
    control_plane, ca_file = planes[False]
    wrong = proxy.url.replace(PROXY_PASSWORD, "not-the-password")
    collector = start_collector(
        control_plane, ca_file, tmp_path, "wrong-proxy-password", "websocket", False, {"HTTPS_PROXY": wrong}
    )
    try:
        failed = wait_for(
            lambda: [e for e in collector.log_events() if e.get("event") == "connection_failed"],
            what="the refused tunnel logged",
        )
        assert "refused CONNECT" in failed[0]["error"] and "401 Unauthorized" in failed[0]["error"], failed[0]
        assert collector.alive() and collector.status().get("state") != "pending"
        assert "not-the-password" not in collector.process.log()  # type: ignore[union-attr]
    finally:
        collector.stop()
