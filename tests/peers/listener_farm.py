"""Loopback hosts with a known set of open TCP ports: the ground truth a discovery must find.

`ListenerFarm("127.0.71", hosts=40)` listens on 127.0.71.1 .. 127.0.71.40, each on a
deterministic subset of three `ports`; some hosts listen on nothing. On loopback every
address answers (an open port accepts, a closed one refuses at once), so a discovery of
the whole range finds every host: those with nothing listening are devices with no open
ports. `expected` is therefore the complete truth: every scanned address and exactly its
open ports.

`start()` checks that truth with a plain connect to every (host, port) before the test
relies on it, so a port some other process holds fails here, not as a puzzling oracle
mismatch. One daemon thread accepts and closes connections and counts them per host,
which lets a test watch a scan progress from the network's side (`hosts_probed()`),
independent of anything the control plane reports.

Tests running in parallel should use different networks (the third octet). The ports
are picked free at `start()` (unless given), so two runs of one test on one machine do
not collide either.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Self

PORTS_PER_HOST = 3
PICK_ATTEMPTS = 20


def open_ports_of(index: int, ports: Sequence[int]) -> frozenset[int]:
    """Host number `index` (1-based) listens on the ports its bits select; none when index % 5 == 0."""
    if index % 5 == 0:
        return frozenset()
    return frozenset(port for bit, port in enumerate(ports) if index >> bit & 1)


class ListenerFarm:
    """`hosts` loopback addresses `network.1 .. network.N` with known open ports (`expected`, after `start()`)."""

    def __init__(self, network: str, hosts: int = 40, ports: Sequence[int] | None = None) -> None:
        if not network.startswith("127.") or network.count(".") != 2:
            raise ValueError(f"network must be three octets of 127.0.0.0/8, like '127.0.71', not {network!r}")
        if not 1 <= hosts <= 254:
            raise ValueError("hosts must be 1..254")
        self.network = network
        self.addresses = [f"{network}.{i}" for i in range(1, hosts + 1)]
        self._wanted_ports = tuple(ports) if ports else None
        self.ports: tuple[int, ...] = ()
        self.expected: dict[str, frozenset[int]] = {}
        self._accepted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"listener-farm-{network}", daemon=True)

    @property
    def targets(self) -> str:
        """The whole range as `outpostctl discoveries create --targets` takes it."""
        return f"{self.addresses[0]}-{self.addresses[-1]}"

    @property
    def ports_arg(self) -> str:
        return ",".join(map(str, self.ports))

    @property
    def open_pairs(self) -> set[tuple[str, int]]:
        return {(address, port) for address, ports in self.expected.items() for port in ports}

    def start(self) -> Self:
        """Listen everywhere `expected` says, check it, and start accepting."""
        try:
            for attempt in range(PICK_ATTEMPTS):
                self.ports = self._wanted_ports or self._free_ports()
                self.expected = {
                    address: open_ports_of(i, self.ports) for i, address in enumerate(self.addresses, start=1)
                }
                try:
                    for address, ports in self.expected.items():
                        for port in sorted(ports):
                            self._listen(address, port)
                    break
                except OSError as exc:
                    self._close_listeners()
                    if self._wanted_ports or exc.errno != errno.EADDRINUSE or attempt == PICK_ATTEMPTS - 1:
                        raise
            self._check_truth()
        except BaseException:
            self.close()
            raise
        with self._lock:
            self._accepted.clear()
        self._thread.start()
        return self

    def hosts_probed(self) -> int:
        """How many hosts with a listener have been connected to so far."""
        with self._lock:
            return len(self._accepted)

    def connections(self) -> int:
        """Connections accepted so far, on all hosts."""
        with self._lock:
            return sum(self._accepted.values())

    def close(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._close_listeners()
        self._selector.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _free_ports(self) -> tuple[int, ...]:
        """Ports free on the first address now (the others are almost always free too)."""
        probes = [socket.socket() for _ in range(PORTS_PER_HOST)]
        try:
            for probe in probes:
                probe.bind((self.addresses[0], 0))
            return tuple(sorted(int(probe.getsockname()[1]) for probe in probes))
        finally:
            for probe in probes:
                probe.close()

    def _close_listeners(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._sockets.clear()

    def _listen(self, address: str, port: int) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sockets.append(sock)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise OSError(exc.errno, f"listener farm: cannot listen on {address}:{port}: {exc.strerror}") from exc
        sock.listen(128)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)

    def _check_truth(self) -> None:
        """Connect to every (host, port): open exactly where expected, refused elsewhere."""
        wrong = []
        for address, ports in self.expected.items():
            for port in self.ports:
                with socket.socket() as probe:
                    probe.settimeout(2)
                    is_open = probe.connect_ex((address, port)) == 0
                if is_open != (port in ports):
                    wrong.append(f"{address}:{port} is {'open' if is_open else 'closed'}")
        if wrong:
            raise AssertionError(f"listener farm ground truth does not hold: {', '.join(wrong)}")
        # The checks' connections wait in the accept queues; take them before counting.
        for key in self._selector.get_map().values():
            listener = key.fileobj
            assert isinstance(listener, socket.socket)
            with contextlib.suppress(BlockingIOError):
                while True:
                    connection, _ = listener.accept()
                    connection.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    connection, _ = listener.accept()
                    connection.close()
                    host = listener.getsockname()[0]
                    with self._lock:
                        self._accepted[host] += 1
