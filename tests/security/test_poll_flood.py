"""Unauthenticated polls against the real gateway: they must not lock collectors out.

A real control plane (registry, scheduler, gateway processes) and a real `outpost-collector`
on the HTTP polling transport. Every wait is on a condition: the collector's status file,
the gateway's `/metrics`.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from outpost.access_key import read_access_key_file
from outpost.agent.v1 import agent_pb2
from outpost.session.noise.wire import InitiatorEnd
from tests.process_harness import Collector, ControlPlane, wait_for

EMPTY_POLLS = 1_000
CLIENT_CONCURRENCY = 50
CONNECT_SECONDS = 5.0
CONTENT_TYPE = "application/x-protobuf"


@pytest.fixture
def plane(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    args = getattr(request, "param", [])
    plane = ControlPlane(tmp_path / "server", database_url, gateway_args=list(args)).start()
    try:
        yield plane
    finally:
        plane.stop()


def metric(plane: ControlPlane, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://{plane.gateway_ready['metrics']}/metrics", timeout=5).read().decode()
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


async def _post_all(url: str, bodies: list[bytes]) -> list[int]:
    """POST every body, at most CLIENT_CONCURRENCY at once; the HTTP statuses."""
    connector = aiohttp.TCPConnector(limit=CLIENT_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def one(body: bytes) -> int:
            async with http.post(url, data=body, headers={"Content-Type": CONTENT_TYPE}) as response:
                await response.read()
                return response.status

        return await asyncio.gather(*(one(body) for body in bodies))


def flood_in_background(url: str, bodies: list[bytes]) -> tuple[threading.Thread, list[list[int]]]:
    statuses: list[list[int]] = []
    thread = threading.Thread(target=lambda: statuses.append(asyncio.run(_post_all(url, bodies))), daemon=True)
    thread.start()
    return thread, statuses


def stalled_initiator(access_key_file: Path, transport: str) -> InitiatorEnd:
    """A sealed session's collector end with a fresh Noise key and the plane's access key."""
    key = read_access_key_file(access_key_file)
    return InitiatorEnd(
        static_private=X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        access_key_id=key.key_id,
        psk=key.secret,
        transport=transport,
        server_static=key.server_public_key,
    )


def hello_poll(access_key_file: Path) -> bytes:
    """A first poll opening a sealed session (a valid access key) that will never send its Hello."""
    first = stalled_initiator(access_key_file, "poll").first_frame()
    return agent_pb2.PollRequest(records=[first]).SerializeToString()


def test_a_thousand_empty_polls_do_not_stop_a_real_collector_from_connecting(
    plane: ControlPlane, tmp_path: Path
) -> None:
    url = plane.url("http_poll")
    empty = agent_pb2.PollRequest().SerializeToString()
    flood, statuses = flood_in_background(url, [empty] * EMPTY_POLLS)
    wait_for(lambda: metric(plane, "outpost_gateway_polls_refused_total", 'reason="no_hello"') > 0, what="flood")

    collector = Collector(tmp_path, "edge-poll", [url], "pw").start()
    try:
        started = time.monotonic()
        collector.wait_state("pending", timeout=CONNECT_SECONDS)
        assert time.monotonic() - started <= CONNECT_SECONDS
    finally:
        collector.stop()
    flood.join(timeout=60)

    assert statuses and len(statuses[0]) == EMPTY_POLLS and set(statuses[0]) == {200}
    assert metric(plane, "outpost_gateway_polls_refused_total", 'reason="no_hello"') == EMPTY_POLLS
    assert metric(plane, "outpost_gateway_unauthenticated_connections") == 0


@pytest.mark.parametrize("plane", [["--max-unauthenticated", "20", "--handshake-timeout", "1"]], indirect=True)
def test_polling_sessions_stuck_in_the_handshake_free_their_slots_at_the_handshake_timeout(
    plane: ControlPlane, tmp_path: Path
) -> None:
    url = plane.url("http_poll")
    flood, statuses = flood_in_background(url, [hello_poll(plane.access_key_file) for _ in range(20)])
    flood.join(timeout=60)
    assert statuses and set(statuses[0]) == {200}

    # Every handshake slot is held, until the handshake timeout ends those sessions.
    collector = Collector(tmp_path, "edge-poll", [url], "pw").start()
    try:
        collector.wait_state("pending", timeout=CONNECT_SECONDS)
    finally:
        collector.stop()
    assert metric(plane, "outpost_gateway_poll_sessions_expired_total", 'phase="handshake"') == 20
    assert metric(plane, "outpost_gateway_sessions_closed_total", 'reason="DISCONNECT_REASON_HANDSHAKE_TIMEOUT"') >= 20
