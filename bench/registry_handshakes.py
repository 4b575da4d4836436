"""Registry handshakes under load: AuthenticateCollector calls at once, with the gateway's deadline.

    .venv/bin/python bench/registry_handshakes.py [--concurrency 100,300,1000]
        [--json bench/results/registry_handshakes.json]

Theory of operation
-------------------
A gateway sends one `RegistryService.AuthenticateCollector` per handshake, with the
deadline `services.gateway.peers.registry_client.AUTH_TIMEOUT_SECONDS`, and admits up to
`--max-unauthenticated` (1,000) handshakes at once. When many collectors connect
together (a gateway restart, a network coming back), that many calls reach the registry
at the same moment. This script plays that moment against a real registry process
(SQLite in a temp dir), with no gateway in between, for each concurrency level:

- first contact: C new collectors authenticate at once (each stored as pending);
- reconnect: C collectors the registry already knows (enrolled beforehand, a few at a
  time, unmeasured) authenticate at once: the reconnect storm.

Every call carries a valid proof (the collector's Ed25519 signature over the handshake
transcript, on a fresh nonce stamped with its issue time) and the gateway's service
identity, as a gateway's call does, so the registry does all of its work. Reported per level: calls that made
their deadline, calls that did not, completions per second, registry CPU per call.
Between levels the registry is left to go idle (CPU below 5% for 1 s, bounded).

Every bench collector stays pending and calls from one address, so the registry's
pending bounds (issue 9: `--max-pending`, `--max-pending-per-network`) are raised above
what the run creates: this measures handshake capacity, not the bounds (with the
defaults, newcomers beyond 100 from one /24 are refused before any write).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
from harness.control_plane import ControlPlane
from harness.credentials import authorized_channel
from harness.idle_collector import CollectorIdentity
from harness.machine import finish, machine, markdown_table

from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session import handshake
from services.gateway.peers.registry_client import AUTH_TIMEOUT_SECONDS

ENROL_IN_FLIGHT = 10
ENROL_DEADLINE = 60.0
REPO = Path(__file__).resolve().parent.parent


class Caller:
    """Sends AuthenticateCollector for bench collectors, as a gateway would."""

    def __init__(self, stub: registry_pb2_grpc.RegistryServiceStub, server_instance: str, verifier: str) -> None:
        self.stub = stub
        self.server_instance = server_instance
        self.verifier = verifier

    async def authenticate(self, identity: CollectorIdentity, deadline: float) -> str:
        """The call's outcome: "accepted", "refused" or the gRPC status name."""
        hello = identity.hello("svc-bench", self.verifier)
        nonce = handshake.new_nonce(int(time.time() * 1000))
        request = registry_pb2.AuthenticateCollectorRequest(
            hello=hello,
            nonce=nonce,
            signature=handshake.sign(identity.key, hello, nonce, self.server_instance),
            remote_address="127.0.0.1:1",
            gateway_id="bench",
            session_id=secrets.token_hex(8),
            transport="tcp",
        )
        try:
            response = await self.stub.AuthenticateCollector(request, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return "accepted" if response.decision == registry_pb2.DECISION_ACCEPTED else "refused"


async def storm(caller: Caller, identities: list[CollectorIdentity], registry_pid: int) -> dict[str, Any]:
    """All of `identities` at once with the gateway's deadline; what made it."""
    registry = psutil.Process(registry_pid)
    cpu = registry.cpu_times()
    started = time.monotonic()
    outcomes = await asyncio.gather(*(caller.authenticate(i, AUTH_TIMEOUT_SECONDS) for i in identities))
    seconds = time.monotonic() - started
    used = registry.cpu_times()
    accepted = outcomes.count("accepted")
    return {
        "concurrent": len(identities),
        "accepted": accepted,
        "deadline_exceeded": outcomes.count("DEADLINE_EXCEEDED"),
        "other": len(outcomes) - accepted - outcomes.count("DEADLINE_EXCEEDED"),
        "wall_seconds": round(seconds, 2),
        "accepted_per_second": round(accepted / seconds, 1),
        "registry_cpu_ms_per_call": round(
            (used.user + used.system - cpu.user - cpu.system) * 1000 / len(identities), 2
        ),
    }


async def enrol(caller: Caller, identities: list[CollectorIdentity]) -> None:
    """First contact for each, a few at a time and with a generous deadline (unmeasured)."""
    gate = asyncio.Semaphore(ENROL_IN_FLIGHT)

    async def one(identity: CollectorIdentity) -> None:
        async with gate:
            outcome = await caller.authenticate(identity, ENROL_DEADLINE)
        if outcome != "accepted":
            raise RuntimeError(f"enrolling {identity.name}: {outcome}")

    await asyncio.gather(*(one(i) for i in identities))


async def wait_idle(pid: int, timeout: float = 30.0) -> None:
    registry = psutil.Process(pid)
    registry.cpu_percent()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        if registry.cpu_percent() < 5.0:
            return


async def run(levels: list[int], workdir: Path) -> dict[str, Any]:
    pending = 2 * sum(levels)  # first contact and reconnect collectors all stay pending
    plane = ControlPlane(workdir, registry_args=[f"--max-pending={pending}", f"--max-pending-per-network={pending}"])
    verifier = "bench"  # the password: hello() binds a verifier of it to each key (ADR 0013)
    results: dict[str, Any] = {
        "figure": "registry_handshakes",
        "machine": machine(),
        "settings": {
            "deadline_seconds": AUTH_TIMEOUT_SECONDS,
            "levels": levels,
            "registry_args": plane.registry_args,
            "credential": "the gateway's service identity",
        },
        "first_contact": [],
        "reconnect": [],
    }
    try:
        plane.start_registry()
        assert plane.registry is not None
        pid = plane.registry.pid
        gateway = plane.credentials.gateway_secret  # what a gateway presents (issue 9)
        async with authorized_channel(plane.registry_ready["grpc"], gateway) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            info = await stub.GetServerInfo(registry_pb2.GetServerInfoRequest(), timeout=30)
            caller = Caller(stub, info.server_instance, verifier)
            for level in levels:
                print(f"first contact: {level} at once")
                fresh = [CollectorIdentity.generate(f"first-{level}-{i:05d}") for i in range(level)]
                await wait_idle(pid)
                results["first_contact"].append(await storm(caller, fresh, pid))
            for level in levels:
                print(f"reconnect: enrolling {level}, then {level} at once")
                known = [CollectorIdentity.generate(f"known-{level}-{i:05d}") for i in range(level)]
                await enrol(caller, known)
                await wait_idle(pid)
                results["reconnect"].append(await storm(caller, known, pid))
    finally:
        plane.stop()
    return results


def table(results: dict[str, Any]) -> str:
    header = ("calls", "at once", "made deadline", "missed", "accepted/s", "registry CPU ms/call")
    rows = [header]
    for kind in ("first_contact", "reconnect"):
        for level in results[kind]:
            rows.append(
                (
                    kind.replace("_", " "),
                    str(level["concurrent"]),
                    f"{level['accepted']} ({100 * level['accepted'] / level['concurrent']:.0f}%)",
                    str(level["deadline_exceeded"] + level["other"]),
                    f"{level['accepted_per_second']:.1f}",
                    f"{level['registry_cpu_ms_per_call']:.1f}",
                )
            )
    return markdown_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="100,300,1000", help="comma-separated levels")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "registry_handshakes.json")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if not levels or min(levels) < 1:
        parser.error("--concurrency takes positive whole numbers")
    workdir = Path(tempfile.mkdtemp(prefix="outpost-bench-"))
    started = time.monotonic()
    try:
        results = asyncio.run(run(levels, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish(results, table(results), args.json, started)


if __name__ == "__main__":
    main()
