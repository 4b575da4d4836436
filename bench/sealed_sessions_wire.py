"""Sealed sessions on a real socket: handshake CPU per connection, frame throughput, bytes on the wire.

    .venv/bin/python bench/sealed_sessions_wire.py [--connections 200] [--frames 5000]
        [--json bench/results/sealed_sessions_wire.json]
    .venv/bin/python bench/sealed_sessions_wire.py --quick      # smoke run, a few seconds

Theory of operation
-------------------
`noise_session_cost.py` measures the I/O-free core; this one measures what the wiring
adds on a loopback TCP socket, sealed and raw *in the same run*:

- the client is the collector's own `TcpTransport`, wrapped (sealed) in
  `SealedTransport.establish` exactly as the supervisor does it (IK: the access key
  carries the server key; XX: first contact, the pin store in a temporary directory);
- the server is an asyncio TCP server feeding every frame to the gateway's `GatewaySeal`
  (sealed) or taking frames as envelopes (raw): the gateway's gate without the session
  core, the registry or the inventory, so the figures are the transport's and the seal's.

Figures (both ends run in this one process, so CPU covers both):

- **connection**: process CPU and wall time per connection from connect to the first
  envelope each way (key confirmation on both ends) and close, over `--connections`;
- **throughput**: `--frames` heartbeats, then 64-device batches (`harness/synthetic.py`),
  sent back to back on one connection until the server has opened them all: frames per
  wall second and CPU microseconds per frame;
- **wire bytes**: what the server's socket read for one heartbeat and one batch (the
  4-byte length, and when sealed the 17 bytes of flags and tag per record).

Nothing asserts; a loaded machine moves wall figures more than CPU ones: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from harness import synthetic
from harness.machine import finish, machine, markdown_table

from outpost.access_key import AccessKey, AccessKeyGrant
from outpost.agent.v1 import agent_pb2
from outpost.session.codec import FrameDecoder, encode_frame
from services.collector.domain.server_url import parse_server_url
from services.collector.store.server_pin import ServerPinStore
from services.collector.transport import ClientTls, Transport
from services.collector.transport.sealed import SealedSessions, SealedTransport
from services.collector.transport.tcp import TcpTransport
from services.gateway.sessions.sealed import GatewaySeal, SealingPolicy

DONE = b"done"
SERVER_KEY = X25519PrivateKey.generate()
SERVER_PRIVATE = SERVER_KEY.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
SERVER_PUBLIC = SERVER_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
ACCESS_KEY = AccessKey("ak_bench", os.urandom(32), SERVER_PUBLIC)
GRANTS = {ACCESS_KEY.key_id: AccessKeyGrant(ACCESS_KEY.key_id, "bench", ACCESS_KEY.secret)}


class FirstContactPins(ServerPinStore):
    """Never pins, so every XX connection stays a first contact (a pin would make the next one IK)."""

    def load(self) -> bytes | None:
        return None

    def save(self, key: bytes) -> None:
        pass


def heartbeat() -> bytes:
    return agent_pb2.CollectorMessage(
        sequence=123_456,
        sent_at_unix_ms=1_796_000_000_000,
        heartbeat=agent_pb2.Heartbeat(
            spool=agent_pb2.SpoolStatus(batches=3, bytes=120_000),
            running_job_run_ids=["0193a7c2-5f1e-7c3a-9d2b-3f4e5a6b7c8d", "0193a7c2-6a2b-7d4c-8e3f-4a5b6c7d8e9f"],
        ),
    ).SerializeToString()


def batch_of_64() -> bytes:
    [batch] = synthetic.batches("0193a7c2-5f1e-7c3a-9d2b-3f4e5a6b7c8d", 1, 0, 1, 64, 1_796_000_000_000)
    return agent_pb2.CollectorMessage(sequence=7, result_batch=batch).SerializeToString()


class Server:
    """Counts envelopes and bytes; answers DONE after every `expect` envelopes of a connection."""

    def __init__(self, sealed: bool) -> None:
        self.sealed = sealed
        self.bytes_read = 0
        self.expect = 1
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        seal = (
            GatewaySeal(static_private=SERVER_PRIVATE, transport="tcp", grants=GRANTS.get, policy=SealingPolicy())
            if self.sealed
            else None
        )
        decoder = FrameDecoder(1 << 20)
        seen = 0
        try:
            while data := await reader.read(1 << 16):
                self.bytes_read += len(data)
                for frame in decoder.feed(data):
                    if seal is None:
                        envelope: bytes | None = frame
                    else:
                        received = seal.receive(frame, loop.time())
                        for reply in received.replies:
                            writer.write(encode_frame(reply))
                        envelope = received.envelope
                    if envelope is None:
                        continue
                    seen += 1
                    if seen >= self.expect:
                        out = [DONE] if seal is None else seal.outgoing(DONE, loop.time())
                        for item in out:
                            writer.write(encode_frame(item))
                        seen = 0
                await writer.drain()
        finally:
            writer.close()


async def connect(server: Server, sealed: bool, pinned: bool, pins: Path) -> Transport:
    url = parse_server_url(f"tcp://127.0.0.1:{server.port}")
    raw = await TcpTransport.open(url, ClientTls(), sealed=sealed)
    if not sealed:
        return raw
    key = ACCESS_KEY if pinned else AccessKey(ACCESS_KEY.key_id, ACCESS_KEY.secret)
    static = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sessions = SealedSessions(key, static, ServerPinStore(pins) if pinned else FirstContactPins(pins))
    return await SealedTransport.establish(raw, sessions, "tcp")


async def connections(server: Server, count: int, sealed: bool, pinned: bool, pins: Path) -> dict[str, float]:
    """Connect, one envelope each way (key confirmation), close; per connection."""
    server.expect = 1
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(count):
        transport = await connect(server, sealed, pinned, pins)
        await transport.send(b"hello")
        assert await transport.recv() == DONE
        await transport.close()
    return {
        "wall_us": (time.perf_counter() - t0) / count * 1e6,
        "cpu_us": (time.process_time() - c0) / count * 1e6,
    }


async def throughput(server: Server, envelope: bytes, frames: int, sealed: bool, pins: Path) -> dict[str, float]:
    server.expect = 1
    transport = await connect(server, sealed, True, pins)
    await transport.send(b"warm-up")
    assert await transport.recv() == DONE
    server.expect = frames
    before = server.bytes_read
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(frames):
        await transport.send(envelope)
    assert await transport.recv() == DONE
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    wire = (server.bytes_read - before) / frames
    await transport.close()
    return {
        "frames_per_s": frames / wall,
        "cpu_us_per_frame": cpu / frames * 1e6,
        "wire_bytes": wire,
        "envelope_bytes": len(envelope),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"connections": {}, "frames": {}}
    with tempfile.TemporaryDirectory() as pins:
        for sealed in (False, True):
            server = Server(sealed)
            await server.start()
            try:
                variants = [("raw TCP", False)] if not sealed else [("sealed IK", True), ("sealed XX", False)]
                for name, pinned in variants:
                    results["connections"][name] = await connections(
                        server, args.connections, sealed, pinned, Path(pins)
                    )
                for name, envelope, frames in (
                    ("heartbeat", heartbeat(), args.frames),
                    ("64-device batch", batch_of_64(), max(1, args.frames // 10)),
                ):
                    entry = results["frames"].setdefault(name, {})
                    entry["sealed" if sealed else "raw"] = await throughput(
                        server, envelope, frames, sealed, Path(pins)
                    )
            finally:
                await server.stop()
    return results


def tables(results: dict[str, Any]) -> str:
    raw = results["connections"]["raw TCP"]
    rows: list[tuple[str, ...]] = [
        ("connection (connect, 1 envelope each way, close)", "CPU µs", "wall µs", "CPU vs raw")
    ]
    for name, figures in results["connections"].items():
        rows.append(
            (
                name,
                f"{figures['cpu_us']:,.0f}",
                f"{figures['wall_us']:,.0f}",
                f"{figures['cpu_us'] / raw['cpu_us']:.2f}",
            )
        )
    frame_rows: list[tuple[str, ...]] = [
        ("frames", "path", "envelope bytes", "wire bytes", "frames/s (wall)", "CPU µs/frame", "CPU vs raw")
    ]
    for name, entry in results["frames"].items():
        for path in ("raw", "sealed"):
            f = entry[path]
            ratio = f["cpu_us_per_frame"] / entry["raw"]["cpu_us_per_frame"]
            frame_rows.append(
                (
                    name,
                    path,
                    f"{f['envelope_bytes']:,}",
                    f"{f['wire_bytes']:,.0f}",
                    f"{f['frames_per_s']:,.0f}",
                    f"{f['cpu_us_per_frame']:,.1f}",
                    f"{ratio:.2f}",
                )
            )
    return markdown_table(rows) + "\n\n" + markdown_table(frame_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "sealed_sessions_wire.json")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.frames = 20, 500
    # Per-connection debug lines would be measured too.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "connections_per_figure": args.connections}
    results.update(asyncio.run(run(args)))
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finish(results, tables(results), args.json, started)


if __name__ == "__main__":
    sys.exit(main())
