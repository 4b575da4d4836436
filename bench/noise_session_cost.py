"""What sealing the agent protocol with Noise costs: handshakes, frames, bytes on the wire.

    .venv/bin/python bench/noise_session_cost.py [--repeats 7] [--seconds 0.4]
        [--json bench/results/noise_session_cost.json]
    .venv/bin/python bench/noise_session_cost.py --quick      # smoke run, a few seconds

Theory of operation
-------------------
Everything runs in this one process, one thread, both ends of each session in turn
(`outpost.session.noise`, I/O-free: no sockets, so the figures are CPU, not network).

- **Handshake**: one complete handshake = the collector's and the gateway's calls from
  the first frame to both `SealedChannel`s, plus the first record each way (the
  gateway acts on nothing before it, ADR 0019). IK (pinned) and XX (first contact).
  Beside them, in the same run: the *floor* = the X25519 work the pattern cannot avoid
  done directly with `cryptography` (IK: 2 key generations + 8 exchanges; XX: 2 + 6),
  and today's handshake crypto (one Ed25519 signature and its verification over a
  challenge-sized transcript), which the sealed session adds to rather than replaces.
- **Frames**: a heartbeat envelope (a `CollectorMessage` with spool status and two
  running job runs) and a 64-device result batch (`CollectorMessage.result_batch`
  built by `harness/synthetic.py`, the ingest bench's devices). *Unsealed* = today's TCP
  path without I/O: `encode_frame` on one side, `FrameDecoder.feed` on the other.
  *Sealed* = `seal` -> `encode_frame` per record -> `FrameDecoder.feed` -> `open`. Both
  sides' CPU per frame; MB/s counts envelope bytes. Bytes on the wire per frame are
  exact (4-byte length per TCP frame; a record adds a flags byte and a 16-byte tag;
  an envelope above 65,518 bytes takes more than one record).

Each figure is the median of `--repeats` timed runs of about `--seconds` each (after a
warm-up). The table leads with this process's CPU time per call (`time.process_time`),
which a loaded machine disturbs far less than wall time (given beside it, median and
min-max). Nothing asserts; the machine may be loaded: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from harness import synthetic
from harness.machine import finish, machine, markdown_table

from outpost.agent.v1 import agent_pb2
from outpost.session.codec import LENGTH_BYTES, FrameDecoder, encode_frame
from outpost.session.noise import Initiator, Responder, SealedChannel

ACCESS_KEY_ID = "ak-bench"


def _keypair() -> tuple[bytes, bytes]:
    key = X25519PrivateKey.generate()
    return (
        key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
        key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


COLLECTOR, SERVER = _keypair(), _keypair()
PSK = os.urandom(32)
PSKS = {ACCESS_KEY_ID: PSK}


def handshake(pinned: bool) -> tuple[SealedChannel, SealedChannel]:
    """One complete handshake and the first record each way: (collector, gateway) channels."""
    collector = Initiator(
        static_private=COLLECTOR[0],
        access_key_id=ACCESS_KEY_ID,
        psk=PSK,
        transport="tcp",
        server_static=SERVER[1] if pinned else None,
    )
    gateway = Responder(static_private=SERVER[0], transport="tcp", psk_for=PSKS.get)
    gateway.read_message(collector.write_message())
    collector.read_message(gateway.write_message())
    if not collector.complete:
        gateway.read_message(collector.write_message())
    mine, theirs = collector.channel(0.0), gateway.channel(0.0)
    theirs.open(mine.seal(b"", 0.0)[0])
    mine.open(theirs.seal(b"", 0.0)[0])
    return mine, theirs


def x25519_floor(exchanges: int) -> Callable[[], None]:
    peer = X25519PrivateKey.generate().public_key()
    statics = [X25519PrivateKey.generate() for _ in range(2)]

    def run() -> None:
        ephemerals = [X25519PrivateKey.generate() for _ in range(2)]
        keys = ephemerals + statics
        for n in range(exchanges):
            keys[n % 4].exchange(peer)

    return run


def ed25519_proof() -> Callable[[], None]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    transcript = os.urandom(400)

    def run() -> None:
        public.verify(key.sign(transcript), transcript)

    return run


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
    message = agent_pb2.CollectorMessage(sequence=7, sent_at_unix_ms=1_796_000_000_000, result_batch=batch)
    return message.SerializeToString()


def unsealed(envelope: bytes) -> Callable[[], None]:
    decoder = FrameDecoder()

    def run() -> None:
        [out] = decoder.feed(encode_frame(envelope))
        assert len(out) == len(envelope)

    return run


def sealed(envelope: bytes) -> Callable[[], None]:
    collector, gateway = handshake(pinned=True)
    decoder = FrameDecoder(max_frame_bytes=65535)
    clock = [0.0]

    def run() -> None:
        clock[0] += 0.001
        out = None
        for record in collector.seal(envelope, clock[0]):
            for frame in decoder.feed(encode_frame(record)):
                out = gateway.open(frame)
        assert out is not None and len(out) == len(envelope)

    return run


def wire_bytes(envelope: bytes) -> tuple[int, int]:
    collector, _ = handshake(pinned=True)
    return LENGTH_BYTES + len(envelope), sum(LENGTH_BYTES + len(r) for r in collector.seal(envelope, 0.0))


def measure(run: Callable[[], object], repeats: int, seconds: float) -> dict[str, float]:
    """Per-call seconds: median and min-max over `repeats` runs of ~`seconds` each."""
    run()
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds / 4:
        run()
        calls += 1
    per_run = max(1, int(calls * 4))
    samples = []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(per_run):
            run()
        samples.append(((time.perf_counter() - t0) / per_run, (time.process_time() - c0) / per_run))
    wall = sorted(s[0] for s in samples)
    cpu = sorted(s[1] for s in samples)
    return {
        "calls_per_run": per_run,
        "median_s": statistics.median(wall),
        "min_s": wall[0],
        "max_s": wall[-1],
        "cpu_median_s": statistics.median(cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "noise_session_cost.json")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds = 3, 0.05
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "repeats": args.repeats, "seconds": args.seconds}

    handshakes = {
        "IK (pinned)": handshake_row(lambda: handshake(True), args),
        "XX (first contact)": handshake_row(lambda: handshake(False), args),
        "floor: X25519 for IK (2 keygen + 8 DH)": handshake_row(x25519_floor(8), args),
        "floor: X25519 for XX (2 keygen + 6 DH)": handshake_row(x25519_floor(6), args),
        "today: Ed25519 sign + verify": handshake_row(ed25519_proof(), args),
    }
    results["handshakes"] = handshakes
    rows: list[tuple[str, ...]] = [
        ("handshake (both sides)", "CPU µs median", "per CPU-second", "vs IK", "wall µs median (min-max)")
    ]
    ik = handshakes["IK (pinned)"]["cpu_median_s"]
    for name, figures in handshakes.items():
        rows.append(
            (
                name,
                f"{figures['cpu_median_s'] * 1e6:,.0f}",
                f"{1 / figures['cpu_median_s']:,.0f}",
                f"{figures['cpu_median_s'] / ik:.2f}",
                f"{figures['median_s'] * 1e6:,.0f} ({figures['min_s'] * 1e6:,.0f}-{figures['max_s'] * 1e6:,.0f})",
            )
        )
    table = markdown_table(rows)

    frames: dict[str, Any] = {}
    frame_rows: list[tuple[str, ...]] = [
        (
            "envelope",
            "bytes",
            "path",
            "CPU µs/frame",
            "frames per CPU-s",
            "MB per CPU-s",
            "sealed/unsealed",
            "wall µs median (min-max)",
            "wire bytes",
        )
    ]
    for name, envelope in (("heartbeat", heartbeat()), ("64-device batch", batch_of_64())):
        plain_wire, sealed_wire = wire_bytes(envelope)
        entry: dict[str, Any] = {"envelope_bytes": len(envelope)}
        for path, build, wire in (("unsealed", unsealed, plain_wire), ("sealed", sealed, sealed_wire)):
            figures = measure(build(envelope), args.repeats, args.seconds)
            figures["wire_bytes"] = wire
            figures["frames_per_cpu_second"] = 1 / figures["cpu_median_s"]
            figures["mb_per_cpu_second"] = len(envelope) / figures["cpu_median_s"] / 1e6
            entry[path] = figures
        entry["cpu_ratio"] = entry["sealed"]["cpu_median_s"] / entry["unsealed"]["cpu_median_s"]
        frames[name] = entry
        for path in ("unsealed", "sealed"):
            f = entry[path]
            frame_rows.append(
                (
                    name,
                    f"{len(envelope):,}",
                    path,
                    f"{f['cpu_median_s'] * 1e6:,.1f}",
                    f"{f['frames_per_cpu_second']:,.0f}",
                    f"{f['mb_per_cpu_second']:,.0f}",
                    f"{entry['cpu_ratio']:.1f}" if path == "sealed" else "1",
                    f"{f['median_s'] * 1e6:,.1f} ({f['min_s'] * 1e6:,.1f}-{f['max_s'] * 1e6:,.1f})",
                    f"{f['wire_bytes']:,}",
                )
            )
    results["frames"] = frames
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finish(results, table + "\n\n" + markdown_table(frame_rows), args.json, started)


def handshake_row(run: Callable[[], object], args: argparse.Namespace) -> dict[str, float]:
    return measure(run, args.repeats, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
