"""Plain TCP listeners on loopback addresses: "open" ports that accept, "filtered" ones that never answer.

Loopback answers every connect at once, with a SYN-ACK or an RST, so there is no
timeout to test against. A *filtered* port is made the Linux way: a listener with a
backlog of 0 whose one accept-queue place is taken by a connection we never accept.
The kernel then drops further SYNs, and a client's connect() hangs until it gives up,
just as behind a firewall that drops packets.

Open listeners are served by one daemon thread that accepts and closes at once. A port
can also be *reserved*: bound but not listening, so connects are refused (closed) while no
other socket can take it; `open()` on it later starts listening there, and `shut()`
stops an open port and holds it closed again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from tests.peers.process import wait_until


class TcpListeners:
    """A set of listeners; `close()` closes every socket it made."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._held: dict[tuple[str, int], socket.socket] = {}
        self._fillers: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def open(self, host: str, port: int = 0) -> int:
        """A port on host that accepts (and closes) connections; returns the port."""
        held = self._held.pop((host, port), None)
        if held is not None:
            held.listen(128)
            sock = held
        else:
            sock = self._listen(host, port, backlog=128)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        return int(sock.getsockname()[1])

    def reserve(self, host: str, port: int = 0) -> int:
        """A closed port on host (connects are refused) that stays ours; returns the port."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._sockets.append(sock)
        bound = int(sock.getsockname()[1])
        self._held[(host, bound)] = sock
        return bound

    def shut(self, host: str, port: int) -> None:
        """Stop accepting on an open port: from now on connects are refused (closed)."""
        for sock in self._sockets:
            if sock.fileno() >= 0 and sock.getsockname() == (host, port) and (host, port) not in self._held:
                self._selector.unregister(sock)
                sock.close()
                break
        self.reserve(host, port)

    def filtered(self, host: str, port: int = 0) -> int:
        """A port on host where connect() gets no answer at all; returns the port."""
        sock = self._listen(host, port, backlog=0)
        bound = int(sock.getsockname()[1])
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((host, bound))
        self._fillers.append(filler)
        wait_until(lambda: filler.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _connected(filler), "filler")
        return bound

    def filler_ports(self) -> set[int]:
        """Local ports of our own filler connections (to leave them out of socket counts)."""
        return {int(filler.getsockname()[1]) for filler in self._fillers}

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for sock in [*self._fillers, *self._sockets]:
            sock.close()
        self._selector.close()

    def _listen(self, host: str, port: int, backlog: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        self._sockets.append(sock)
        return sock

    def _serve(self) -> None:
        # epoll lets `open()` register listeners from the test's thread while this one waits.
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    connection, _ = listener.accept()
                    connection.close()


def _connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True
