"""Bad input on every gateway listener: a clear reason, a closed connection, no crash.

After each abuse the gateway must still serve a well-behaved collector. Every session is
sealed (ADR 0019): a refusal before the Noise handshake completes comes as a typed reply
(`0x00 || Disconnect`, read here with `decode_reply`), one to a cleartext first frame as
the cleartext Disconnect an old collector reads; envelopes crafted by hand go inside a
sealed session (`SealedTcpClient`).
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from outpost.agent.v1 import agent_pb2
from tests.peers.sealed_client import SealedTcpClient, decode_reply
from tests.process_harness import Collector, ControlPlane, wait_for

R = agent_pb2.DisconnectReason


def _plane(directory: Path, gateway_args: list[str] | None = None) -> Iterator[ControlPlane]:
    url = f"sqlite+aiosqlite:///{directory / 'outpost.db'}"
    plane = ControlPlane(directory / "server", url, gateway_args=gateway_args or []).start()
    try:
        yield plane
    finally:
        assert plane.gateway is not None and plane.gateway.alive(), "gateway died"
        plane.stop()


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One gateway takes all the abuse of this module: it must keep serving throughout."""
    yield from _plane(tmp_path_factory.mktemp("bad-input"))


@pytest.fixture
def own_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A gateway of its own, for abuse that changes how it treats 127.0.0.1 afterwards.

    Bad proofs prove no key, so they count against the address's ceiling only: lowered
    here from 200 to 10 a minute so that a dozen attempts reach it.
    """
    yield from _plane(tmp_path, ["--max-failed-handshakes-per-address", "10"])


def _hello(version: int = 1) -> agent_pb2.CollectorMessage:
    key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return agent_pb2.CollectorMessage(
        sequence=1,
        hello=agent_pb2.Hello(
            protocol_version=version,
            instance_uid="u-1",
            name="probe",
            username="svc",
            password_verifier="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            public_key=key,
        ),
    )


def _tcp_exchange(address: str, payload: bytes, timeout: float = 10.0) -> list[agent_pb2.ServerMessage]:
    """Send raw bytes; read frames until the gateway closes the connection."""
    host, port = address.rsplit(":", 1)
    messages = []
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        while len(buffer) >= 4:
            (length,) = struct.unpack(">I", buffer[:4])
            messages.append(decode_reply(buffer[4 : 4 + length]))
            buffer = buffer[4 + length :]
    return messages


def _frame(message: agent_pb2.CollectorMessage | bytes) -> bytes:
    data = message if isinstance(message, bytes) else message.SerializeToString()
    return struct.pack(">I", len(data)) + data


def _disconnect(messages: list[agent_pb2.ServerMessage]) -> agent_pb2.Disconnect:
    assert messages and messages[-1].WhichOneof("body") == "disconnect", messages
    return messages[-1].disconnect


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", R.DISCONNECT_REASON_FRAME_TOO_LARGE, "HTTP client"),
        (struct.pack(">I", 16 * 1024 * 1024) + b"x" * 100, R.DISCONNECT_REASON_FRAME_TOO_LARGE, "exceeds the limit"),
        (_frame(b"\xff\xff\xff\xff garbage"), R.DISCONNECT_REASON_ACCESS_KEY_REFUSED, "requires sealed sessions"),
        (_frame(b"\x01" + b"\xff" * 40), R.DISCONNECT_REASON_MALFORMED_FRAME, "handshake message 1"),
        (_frame(_hello()), R.DISCONNECT_REASON_ACCESS_KEY_REFUSED, "--access-key-file"),
    ],
    ids=["http-on-tcp-port", "oversized-length", "cleartext-garbage", "sealed-garbage", "cleartext-hello"],
)
def test_tcp_listener_closes_bad_input_with_a_clear_reason(
    plane: ControlPlane, tmp_path: Path, payload: bytes, reason: int, words: str
) -> None:
    disconnect = _disconnect(_tcp_exchange(plane.gateway_ready["tcp"], payload))
    assert disconnect.reason == reason
    assert words in disconnect.message
    _a_good_collector_still_connects(plane, tmp_path, "tcp")


@pytest.mark.parametrize(
    ("message", "reason", "words"),
    [
        (_hello(version=99), R.DISCONNECT_REASON_UNSUPPORTED_VERSION, "not supported"),
        (
            agent_pb2.CollectorMessage(sequence=1, proof=agent_pb2.Proof(signature=b"x" * 64)),
            R.DISCONNECT_REASON_PROTOCOL_ERROR,
            "unexpected proof",
        ),
        (b"\xff\xff\xff\xff garbage", R.DISCONNECT_REASON_MALFORMED_FRAME, "malformed"),
    ],
    ids=["wrong-protocol-version", "proof-before-hello", "garbage-envelope"],
)
def test_bad_envelopes_inside_a_sealed_session_get_a_clear_sealed_reason(
    plane: ControlPlane, message: agent_pb2.CollectorMessage | bytes, reason: int, words: str
) -> None:
    with SealedTcpClient(plane.gateway_ready["tcp"], plane.access_key_file) as client:
        assert client.handshake(), client.refusal
        if isinstance(message, bytes):
            for record in client.end.seal(message, 0.0):
                client.sock.sendall(_frame(record))
        else:
            client.send(message)
        disconnect = _disconnect(client.until_closed())
    assert disconnect.reason == reason
    assert words in disconnect.message


def test_tcp_handshake_that_never_completes_is_timed_out(plane: ControlPlane) -> None:
    disconnect = _disconnect(_tcp_exchange(plane.gateway_ready["tcp"], b""))
    assert disconnect.reason == R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT


def test_bad_proof_is_refused_and_repeated_failures_are_rate_limited(own_plane: ControlPlane) -> None:
    reasons: list[int | None] = []
    last = agent_pb2.Disconnect()
    for _ in range(12):
        with SealedTcpClient(own_plane.gateway_ready["tcp"], own_plane.access_key_file) as client:
            if not client.handshake():
                # Refused before the sealed session opened: the address is over its ceiling.
                reasons.append(client.refusal.reason if client.refusal else None)
                last = client.refusal or last
                continue
            client.send(_hello())
            first = client.recv()
            if first is None:
                reasons.append(None)
                continue
            if first.WhichOneof("body") == "disconnect":
                reasons.append(first.disconnect.reason)
                last = first.disconnect
                continue
            client.send(agent_pb2.CollectorMessage(sequence=2, proof=agent_pb2.Proof(signature=b"\x00" * 64)))
            last = _disconnect(client.until_closed())
            reasons.append(last.reason)
    assert reasons[0] == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
    assert reasons[-1] == R.DISCONNECT_REASON_RATE_LIMITED
    assert last.retry and 0 < last.retry_after_seconds <= 60  # when the window lets it in again


def test_websocket_listener_closes_bad_input_with_a_clear_reason(plane: ControlPlane, tmp_path: Path) -> None:
    url = f"ws://{plane.gateway_ready['websocket']}/v1/agent"
    with ws_connect(url, open_timeout=10) as ws:
        ws.send("hello as text")
        reply = decode_reply(ws.recv(timeout=10))  # type: ignore[arg-type]
        assert reply.disconnect.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
        assert "text messages are not accepted" in reply.disconnect.message
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    with ws_connect(url, open_timeout=10) as ws:
        ws.send(b"\xff\xff\xff garbage")
        reply = decode_reply(ws.recv(timeout=10))  # type: ignore[arg-type]
        assert reply.disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    with ws_connect(url, open_timeout=10) as ws:
        ws.send(b"\x02" + b"\xff" * 40)  # a sealed first frame that is not a Noise message 1
        reply = decode_reply(ws.recv(timeout=10))  # type: ignore[arg-type]
        assert reply.disconnect.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    with ws_connect(url, open_timeout=10, max_size=None) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.send(b"x" * (2 * 1024 * 1024))
        while True:
            ws.recv(timeout=10)
    # The gateway closes with 1009 as soon as the frame's header announces the size. A
    # client still writing the rest may then be reset before it reads that close frame
    # (TCP drops unread data with an RST), so the gateway's own record is the oracle.
    if closed.value.rcvd is not None:
        assert closed.value.rcvd.code == 1009
    assert plane.gateway is not None
    wait_for(
        lambda: any(
            e.get("event") == "session_closed"
            and e.get("reason") == "DISCONNECT_REASON_FRAME_TOO_LARGE"
            and e.get("transport") == "websocket"
            for e in plane.gateway.log_events()  # type: ignore[union-attr]
        ),
        10,
        what="the gateway to log the oversized WebSocket frame",
    )
    _a_good_collector_still_connects(plane, tmp_path, "websocket")


def test_plain_http_on_the_websocket_path_gets_a_clear_400(plane: ControlPlane) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{plane.gateway_ready['websocket']}/v1/agent", timeout=10)
    assert refused.value.code == 400
    assert b"WebSocket only" in refused.value.read()


def test_grpc_listener_closes_bad_input_with_a_clear_reason(plane: ControlPlane, tmp_path: Path) -> None:
    with grpc.insecure_channel(plane.gateway_ready["grpc"]) as channel:
        connect = channel.stream_stream("/outpost.agent.v1.AgentService/Connect")
        replies = list(connect(iter([b"\xff\xff\xff garbage"]), timeout=10))
        message = decode_reply(replies[-1])
        assert message.disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
        replies = list(connect(iter([b"\x01" + b"\xff" * 40]), timeout=10))
        assert decode_reply(replies[-1]).disconnect.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
        with pytest.raises(grpc.RpcError) as too_big:
            list(connect(iter([b"x" * (2 * 1024 * 1024)]), timeout=10))
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _a_good_collector_still_connects(plane, tmp_path, "grpc")


def _a_good_collector_still_connects(plane: ControlPlane, tmp_path: Path, transport: str) -> None:
    name = f"good-{transport}-{uuid.uuid4().hex[:6]}"  # the module shares one control plane
    collector = Collector(tmp_path, name, [plane.url(transport)], "pw").start()
    try:
        collector.wait_state("pending")
    finally:
        collector.stop()
