"""The chaos tests' TCP proxy keeps its promises: forwards, cuts to silence, restores, resets.

Silence cannot be observed except by waiting, so the "nothing arrives" checks wait
`SILENCE` seconds; everything else waits on the data itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.peers.tcp_proxy import TcpProxy
from tests.process_harness import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(30)]

SILENCE = 0.3
TIMEOUT = 5.0


@pytest.fixture
def echo() -> Iterator[str]:
    """An echo server on loopback: "127.0.0.1:PORT"."""
    server = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        server.settimeout(0.05)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = server.accept()
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join(5)
        server.close()


def connect(proxy: TcpProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)


def echoed(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def silent(sock: socket.socket) -> bool:
    """Nothing arrives, not even an end of stream, for `SILENCE` seconds."""
    sock.settimeout(SILENCE)
    try:
        sock.recv(4096)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(TIMEOUT)
    return False


def test_proxy_forwards_cuts_to_silence_and_restores_without_losing_bytes(echo: str) -> None:
    with TcpProxy(echo) as proxy, connect(proxy) as before:
        assert echoed(before, b"one") == b"one"

        proxy.cut()
        before.sendall(b"two")
        assert silent(before), "a cut link must be silent"
        with connect(proxy) as during:  # accepted, not refused
            during.sendall(b"three")
            assert silent(during)
            wait_for(lambda: proxy.open_connections() == 2, timeout=TIMEOUT, what="the proxy holding both")

            proxy.restore()
            assert before.recv(4096) == b"two"
            assert during.recv(4096) == b"three"
        assert echoed(before, b"four") == b"four"


def test_cut_with_reset_tears_down_open_connections_and_black_holes_new_ones(echo: str) -> None:
    with TcpProxy(echo) as proxy, connect(proxy) as before:
        assert echoed(before, b"one") == b"one"
        proxy.cut(reset_existing=True)
        with pytest.raises(ConnectionResetError):
            before.sendall(b"two")
            before.recv(4096)
        with connect(proxy) as during:
            during.sendall(b"three")
            assert silent(during)
            proxy.restore()
            assert during.recv(4096) == b"three"
