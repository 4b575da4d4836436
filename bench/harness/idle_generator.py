"""The idle-session load generator, split over child processes so it does not share one core.

`bench/idle_sessions.py` holds up to 10,000 idle collectors (or bare clients) at once; in
one process, that process's event loop competes with the gateway for the machine's cores
unevenly (one busy core for the generator, whatever is left for the gateway and registry).
So the collectors live in K child processes, each holding its share, and the bench itself
only orchestrates and reads the gateway's RSS.

Child: `python bench/harness/idle_generator.py --identities FILE` reads one JSON command per
line on stdin and answers each with one JSON line on stdout (logs go to stderr):

    {"op": "collectors", "url": ..., "start": i, "stop": j, "in_flight": n, "until": "ENABLED",
     "attempts": 1, "access_key": path|null, "bound": server_instance}
        connect collectors i..j-1 (`harness.idle_collector.IdleCollector`: the real session
        core over the real transports), `in_flight` at a time, and hold them; the answer
        carries every handshake-to-live time (`durations`), completion times on the
        machine's monotonic clock (comparable across processes), failures, retries
    {"op": "wait", "until": "ENABLED", "timeout": s}    every held collector in that state
    {"op": "status"}                                    how many held collectors are live
    {"op": "bare", "kind": ..., "port": p, "count": n, "in_flight": m}
        open n idle bare clients (`harness.bare_servers.BARE_CLIENTS`) and hold them
    {"op": "close"}                                     close everything held, timed
    {"op": "exit"}

Every answer has `"ok": true`, or `"ok": false` and an `"error"`.

Identities: one file written by the bench (`write_identities`), read by every child: name,
instance uid, the raw Ed25519 private key and the argon2id verifier bound to it, so each
child speaks as the same enrolled collectors the bench registered.

Parent: `Generators` starts the K children, splits a range of collectors (and the
in-flight budget) between them in proportion, and merges their answers into one
`harness.connections.ConnectRun`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a child: `bench/` on the path (as for the bench), not `bench/harness/`
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from harness.bare_servers import BARE_CLIENTS, OWN_CONNECTION, Close
from harness.connections import ConnectRun, close_all, connect_all
from harness.enroll import PASSWORD, USERNAME
from harness.idle_collector import CollectorIdentity, IdleCollector, sealing
from harness.machine import raise_fd_limit
from outpost.logs import configure_logging
from outpost.session.collector import CollectorState
from services.collector.domain.server_url import parse_server_url
from services.collector.transport import grpc_stream

GENERATOR = Path(__file__).resolve()
RETRY_DELAY = (1.0, 3.0)
"""Seconds (uniform) before a refused collector tries again, as a real one backs off."""


# --- identities shared with the children ----------------------------------------------------
def write_identities(path: Path, identities: list[CollectorIdentity]) -> None:
    """Name, uid, raw private key and bound verifier of each collector, one JSON list."""
    rows = [
        [
            identity.name,
            identity.instance_uid,
            identity.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex(),
            identity.verifier(USERNAME, PASSWORD),
        ]
        for identity in identities
    ]
    path.write_text(json.dumps(rows))


def read_identities(path: Path) -> list[CollectorIdentity]:
    identities = []
    for name, uid, key, verifier in json.loads(path.read_text()):
        identity = CollectorIdentity(name, uid, Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key)))
        identity._verifiers[USERNAME, PASSWORD] = verifier  # computed once, by the bench
        identities.append(identity)
    return identities


# --- the child ----------------------------------------------------------------------------------
@dataclass
class Held:
    """What one child holds open between commands."""

    identities: list[CollectorIdentity]
    collectors: list[IdleCollector] = field(default_factory=list)
    bare: list[Close] = field(default_factory=list)


def _run_json(run: ConnectRun) -> dict[str, Any]:
    return {
        "durations": run.durations,
        "completed_at": run.completed_at,
        "failures": run.failures,
        "seconds": run.seconds,
    }


async def _collectors(held: Held, command: dict[str, Any]) -> dict[str, Any]:
    url = parse_server_url(command["url"])
    until = CollectorState(command["until"])
    attempts = int(command.get("attempts", 1))
    access_key = Path(command["access_key"]) if command.get("access_key") else None
    timeout = float(command.get("timeout", 120.0))
    retries = 0

    async def one(i: int) -> tuple[float, float]:
        nonlocal retries
        identity = held.identities[i]
        identity.bound_server_instance = command.get("bound", "") or identity.bound_server_instance
        first: float | None = None  # handshake-to-live counts from the first attempt, retries included
        for attempt in range(attempts):
            collector = IdleCollector(
                identity, identity.hello(USERNAME, PASSWORD), sealing(access_key), password=PASSWORD
            )
            held.collectors.append(collector)
            try:
                await collector.connect(url, until, timeout)
            except RuntimeError:
                first = collector.opened_at if first is None else first
                held.collectors.remove(collector)
                await collector.close()
                if attempt + 1 == attempts:
                    raise
                retries += 1
                await asyncio.sleep(random.uniform(*RETRY_DELAY))
            else:
                live = collector.live_at if until is CollectorState.ENABLED else None
                opened = collector.opened_at if first is None else first
                return opened, live if live is not None else asyncio.get_running_loop().time()
        raise AssertionError("unreachable")

    start, stop = int(command["start"]), int(command["stop"])
    run = await connect_all(stop - start, int(command["in_flight"]), lambda k: one(start + k))
    return {**_run_json(run), "retries": retries, "held": len(held.collectors)}


async def _wait(held: Held, command: dict[str, Any]) -> dict[str, Any]:
    until = CollectorState(command["until"])
    timeout = float(command.get("timeout", 300.0))
    results = await asyncio.gather(*(c.wait_for(until, timeout) for c in held.collectors), return_exceptions=True)
    failures = [str(r) for r in results if isinstance(r, BaseException)]
    instances = sorted({c.identity.bound_server_instance for c in held.collectors} - {""})
    return {"reached": len(results) - len(failures), "failures": failures[:5], "server_instances": instances}


def _status(held: Held) -> dict[str, Any]:
    live = sum(1 for c in held.collectors if c.state is CollectorState.ENABLED)
    return {"live": live, "held": len(held.collectors), "bare": len(held.bare)}


async def _bare(held: Held, command: dict[str, Any]) -> dict[str, Any]:
    open_client = BARE_CLIENTS[command["kind"]]
    port = int(command["port"])
    loop = asyncio.get_running_loop()

    async def one(_: int) -> tuple[float, float]:
        opened = loop.time()
        held.bare.append(await open_client(port))
        return opened, loop.time()

    run = await connect_all(int(command["count"]), int(command["in_flight"]), one)
    return {**_run_json(run), "held": len(held.bare)}


async def _close(held: Held) -> dict[str, Any]:
    started = time.monotonic()
    count = len(held.collectors) + len(held.bare)
    await close_all([*(c.close for c in held.collectors), *held.bare])
    held.collectors.clear()
    held.bare.clear()
    return {"closed": count, "seconds": time.monotonic() - started}


async def serve(identities_file: Path) -> None:
    # Answers get the pipe to themselves: anything else printed (by libraries too) goes to the log.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    configure_logging("console", "info")  # not a debug line per sealed session
    held = Held(read_identities(identities_file))
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            command: dict[str, Any] = {"op": "exit"}
        else:
            command = json.loads(line)
        op = command["op"]
        try:
            if op == "exit":
                await _close(held)
                return
            if op == "collectors":
                answer = await _collectors(held, command)
            elif op == "wait":
                answer = await _wait(held, command)
            elif op == "status":
                answer = _status(held)
            elif op == "bare":
                answer = await _bare(held, command)
            elif op == "close":
                answer = await _close(held)
            else:
                raise ValueError(f"unknown op {op!r}")
            answer["ok"] = True
        except Exception as exc:
            traceback.print_exc()
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="one idle-session load generator process (bench/idle_sessions.py)")
    parser.add_argument("--identities", type=Path, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    # Each collector is its own process in production, with its own TCP connection.
    grpc_stream.CHANNEL_OPTIONS = [*grpc_stream.CHANNEL_OPTIONS, OWN_CONNECTION]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.identities))


# --- the parent ---------------------------------------------------------------------------------
def shares(start: int, stop: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) cut into `parts` contiguous ranges as even as can be (some may be empty)."""
    count = stop - start
    bounds = [start + count * k // parts for k in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def merge(answers: list[dict[str, Any]]) -> ConnectRun:
    """One run out of the children's: all durations, all completion times, the longest wall time."""
    run = ConnectRun()
    for answer in answers:
        run.durations += answer["durations"]
        run.completed_at += answer["completed_at"]
        run.failures += answer["failures"]
        run.seconds = max(run.seconds, answer["seconds"])
    return run


@dataclass
class Generators:
    """K generator children; every command goes to each and waits for every answer."""

    count: int
    identities_file: Path
    workdir: Path
    children: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self) -> Generators:
        for k in range(self.count):
            log = (self.workdir / f"generator-{k}.log").open("ab")
            self.children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(GENERATOR),
                    f"--identities={self.identities_file}",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    limit=64 * 2**20,
                )
            )
            log.close()
        return self

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def log_tail(self, k: int, chars: int = 3000) -> str:
        path = self.workdir / f"generator-{k}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    async def ask(
        self, commands: list[dict[str, Any] | None], check: Callable[[], None] | None = None
    ) -> list[dict[str, Any]]:
        """Send commands[k] to child k (None: skip it); every answer, checking `check` each second."""
        asked = [(k, c) for k, c in enumerate(commands) if c is not None]
        for k, command in asked:
            stdin = self.children[k].stdin
            assert stdin is not None
            stdin.write((json.dumps(command) + "\n").encode())
            await stdin.drain()
        readers = [asyncio.ensure_future(self._read(k)) for k, _ in asked]
        try:
            while True:
                _done, pending = await asyncio.wait(readers, timeout=1.0)
                if not pending:
                    break
                if check is not None:
                    check()
        finally:
            for reader in readers:
                reader.cancel()
        return [reader.result() for reader in readers]

    async def _read(self, k: int) -> dict[str, Any]:
        stdout = self.children[k].stdout
        assert stdout is not None
        line = await stdout.readline()
        if not line:
            raise RuntimeError(f"generator {k} exited:\n{self.log_tail(k)}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"generator {k}: {answer['error']}\n{self.log_tail(k)}")
        return answer

    async def split(
        self, start: int, stop: int, in_flight: int, command: dict[str, Any], check: Callable[[], None] | None = None
    ) -> list[dict[str, Any]]:
        """`command` for collectors start..stop-1, cut between the children with the in-flight budget."""
        cuts = shares(start, stop, self.count)
        total = max(1, stop - start)
        commands: list[dict[str, Any] | None] = [
            {**command, "start": lo, "stop": hi, "in_flight": max(1, in_flight * (hi - lo) // total)}
            if hi > lo
            else None
            for lo, hi in cuts
        ]
        return await self.ask(commands, check)

    async def all(self, command: dict[str, Any], check: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        return await self.ask([command] * self.count, check)

    async def stop(self) -> None:
        """Ask each child to close what it holds and exit; kill (by its pid) one that does not."""
        for child in self.children:
            if child.returncode is None and child.stdin is not None:
                with contextlib.suppress(ConnectionError):
                    child.stdin.write(b'{"op": "exit"}\n')
                    await child.stdin.drain()
        for child in self.children:
            try:
                await asyncio.wait_for(child.wait(), 120)
            except TimeoutError:
                child.kill()
                await child.wait()


if __name__ == "__main__":
    main()
