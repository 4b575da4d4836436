"""Real listeners on loopback addresses for the discovery benches, served by a child process.

    python bench/_discovery_listeners.py --ready-file PATH 127.0.2.5:21001:ssh 127.0.2.5:21051:http ...

Each listener accepts and talks, so a port is open to a connect scan and has something
to say to the banner probe:

    ssh   speaks first: an SSH identification line, then waits for the peer to leave
    http  waits for a request, answers `200 OK` with a Server header and a <title>, closes

The accept loops drain the queue, so the scanners' connections (each reset at once with
SO_LINGER 0) never fill a backlog and turn an open port into a filtered one. A child
process, so neither its CPU nor its memory is charged to what the bench measures. The
ready file (written once every listener is bound) lists what it serves.

Without `--ready-file` it only says what it is for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from outpost.ready import write_ready_file

KINDS = ("ssh", "http")
SSH_IDENTIFICATION = b"SSH-2.0-OpenSSH_9.6 outpost-bench\r\n"
HTTP_RESPONSE = (
    b"HTTP/1.0 200 OK\r\nServer: outpost-bench\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
    b"<html><head><title>outpost bench</title></head><body>bench</body></html>\n"
)
TALK_SECONDS = 5.0
Talk = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BACKLOG = 4096


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    kind: str

    @classmethod
    def parse(cls, text: str) -> Listener:
        ip, port, kind = text.rsplit(":", 2)
        if kind not in KINDS:
            raise argparse.ArgumentTypeError(f"listener {text!r}: kind must be one of {', '.join(KINDS)}")
        return cls(ip, int(port), kind)

    def spec(self) -> str:
        return f"{self.ip}:{self.port}:{self.kind}"


async def _ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(SSH_IDENTIFICATION)
    await writer.drain()
    async with asyncio.timeout(TALK_SECONDS):
        while await reader.read(4096):
            pass


async def _http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async with asyncio.timeout(TALK_SECONDS):
        await reader.readuntil(b"\r\n\r\n")
    writer.write(HTTP_RESPONSE)
    await writer.drain()


HANDLERS: dict[str, Talk] = {"ssh": _ssh, "http": _http}


def _handler(talk: Talk) -> Talk:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A scanner resets the connection at once; a banner probe may give up mid-way.
        with contextlib.suppress(ConnectionError, TimeoutError, asyncio.IncompleteReadError, OSError):
            await talk(reader, writer)
        writer.close()

    return handle


async def serve(listeners: list[Listener], ready_file: str) -> None:
    servers = []
    for listener in listeners:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listener.ip, listener.port))
        servers.append(await asyncio.start_server(_handler(HANDLERS[listener.kind]), sock=sock, backlog=BACKLOG))
    write_ready_file(ready_file, listeners=[listener.spec() for listener in listeners])
    await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description="loopback listeners for bench/discovery_scan.py")
    parser.add_argument("--ready-file", help="where to write the ready file once every listener is bound")
    parser.add_argument("listeners", nargs="*", type=Listener.parse, metavar="IP:PORT:KIND")
    args = parser.parse_args()
    if not args.ready_file:
        print("helper of bench/discovery_scan.py and bench/collector_scan_rss.py (started by them); not a benchmark")
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listeners, args.ready_file))


if __name__ == "__main__":
    main()
