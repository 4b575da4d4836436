"""The TCP connect probe: open = connected, closed = refused, filtered = no answer in time.

The same method as `nmap -sT`: an ordinary non-blocking connect(), so it needs no raw
sockets and no root. An answer of either kind proves a host is there (a refusal is the
host's own RST). An open port is closed again at once with SO_LINGER 0 (an RST, as nmap
does), so a large scan leaves no TIME_WAIT sockets behind on the collector.

The probe drives connect() by hand (`connect_ex`, then wait for writability) instead of
`asyncio.wait_for(loop.sock_connect(...))`: no task and no timeout context per port, which
is most of the per-connection cost at the scale of a /16 times a port list. A connect
that has already been answered when connect() returns (loopback, a near host) is read
at once, without a trip through the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import time

from services.collector.discovery.model import PortState

LINGER_RST = struct.pack("ii", 1, 0)
IN_PROGRESS = {errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY, errno.EWOULDBLOCK}


async def probe_port(ip: str, port: int, timeout: float, *, family: int = socket.AF_INET) -> tuple[PortState, float]:
    """Connect to (ip, port); return its state and the time to the answer in milliseconds."""
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        started = time.perf_counter()
        error = sock.connect_ex((ip, port))
        if error in IN_PROGRESS:
            # A near host (loopback, the same segment) has often answered before
            # connect() returns: read the outcome now and skip the event loop round trip.
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error == 0 and not is_connected(sock):
                error = await connected(asyncio.get_running_loop(), sock, timeout)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if error == 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    finally:
        sock.close()
    return state_of(error), elapsed_ms


def state_of(error: int) -> PortState:
    """A finished connect()'s errno as a port state."""
    if error == 0:
        return PortState.OPEN
    if error == errno.ECONNREFUSED:
        return PortState.CLOSED
    # No answer in time, or an answer from elsewhere (host/network unreachable): no proof
    # that the host is there.
    return PortState.FILTERED


def is_connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


async def connected(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> int:
    """Wait until the pending connect() finishes; its errno, or ETIMEDOUT."""
    done: asyncio.Future[int] = loop.create_future()
    fd = sock.fileno()

    def writable() -> None:
        if not done.done():
            done.set_result(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

    def expired() -> None:
        if not done.done():
            done.set_result(errno.ETIMEDOUT)

    loop.add_writer(fd, writable)
    timer = loop.call_later(timeout, expired)
    try:
        return await done
    finally:
        timer.cancel()
        loop.remove_writer(fd)


def family_of(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET
