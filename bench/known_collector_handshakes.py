"""Known-collector handshakes per CPU-second of a gateway, deciding from its cache (ADR 0034).

    .venv/bin/python bench/known_collector_handshakes.py [--seconds 0.5] [--repeats 7]
        [--json bench/results/known_collector_handshakes.json]

What it times, in this process and thread, as `time.process_time` (CPU, not wall: the
machine is shared and wall times move 2-4x with other work):

- *decide locally* — what a gateway does for one known collector's handshake after the
  Noise handshake: answer the Challenge from the cache (`challenge_parameters`), build the
  transcript, verify the Ed25519 proof, and `local_verification.verify` (key, identity,
  the SCRAM proofs against the current and, during an overlap, the previous credential).
- *ask the registry (gateway side only)* — what a gateway did per handshake before: verify
  the proof and build the two requests (GetPasswordParameters, AuthenticateCollector)
  as bytes; the registry's own work comes on top (`bench/registry_handshakes.py`:
  12-14 ms of registry CPU per known collector's handshake, 6.5 ms in the storm).
- baseline, same run: one Ed25519 verification alone (the floor of any decision).

The Noise handshake the gateway terminates first is `bench/noise_session_cost.py`'s (about
half of 876 us for IK, both ends). So a gateway core's ceiling for known-collector
handshakes is about 1 / (Noise half + decide locally); the table prints that estimate.
Nothing here asserts. Writes JSON (with `os.getloadavg()`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO / "libs", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from outpost import password_proof  # noqa: E402
from outpost.agent.v1 import agent_pb2  # noqa: E402
from outpost.password_proof import PasswordParameters  # noqa: E402
from outpost.registry.v1 import registry_pb2  # noqa: E402
from outpost.session import handshake  # noqa: E402
from outpost.session.server import AuthDecision, ServerState  # noqa: E402
from services.gateway.peers.collector_cache import CachedCollector, StoredPassword  # noqa: E402
from services.gateway.sessions import local_verification as local  # noqa: E402

NOISE_IK_BOTH_ENDS_US = 876.0
"""docs/benchmarks.md, "Sealed sessions": median CPU of one IK handshake, both ends."""
REGISTRY_CPU_US = (6500.0, 14300.0)
"""docs/benchmarks.md: registry CPU per known collector's handshake (reconnect storm; registry_handshakes)."""
SERVER = "srv-instance"
USERNAME = "svc-outpost"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def setup(previous: bool) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    hello = agent_pb2.Hello(
        instance_uid="uid-1",
        name="edge-1",
        zone="lab",
        version="0.1.0",
        public_key=public,
        username=USERNAME,
        password_verifier="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43,
    )
    credentials = []
    for slot, salt, password in (("current", b"c" * 16, "pw-new"), ("previous", b"p" * 16, "pw-old")):
        if slot == "previous" and not previous:
            continue
        params = PasswordParameters(salt, 8, 1, 1, public)
        salted = password_proof.salted_password(password, username=USERNAME, params=params)
        until = NOW + timedelta(hours=1) if slot == "previous" else None
        credentials.append(StoredPassword(slot, params, password_proof.stored_key(salted), until))
    entry = CachedCollector(
        instance_uid="uid-1",
        name="edge-1",
        zone="lab",
        state=ServerState.ENABLED,
        state_reason="",
        revision=1,
        public_key=public,
        encryption_public_key=b"",
        enrolled=False,
        passwords=tuple(credentials),
        version="0.1.0",
        sealing_algorithms=(),
        access_key_id="ak",
        password_last_proved="current",
    )
    nonce = handshake.new_nonce(int(time.time() * 1000))
    binding = b"h" * 32
    transcript = handshake.transcript(hello, nonce, SERVER, binding)
    signature = private.sign(transcript)
    offered = local.challenge_parameters(entry, public, NOW)
    proofs = []
    for p in offered:
        params = PasswordParameters(p.salt, p.memory_kib, p.time_cost, p.parallelism, p.public_key)
        salted = password_proof.salted_password("pw-new", username=USERNAME, params=params)
        proofs.append(password_proof.client_proof(salted, password_proof.auth_message(transcript, params)))

    def decide_locally() -> object:
        local.challenge_parameters(entry, public, NOW)
        proven = handshake.verify(hello, nonce, SERVER, signature, binding)
        attempt = local.LocalAttempt(
            hello=hello,
            proven=proven,
            transcript=handshake.transcript(hello, nonce, SERVER, binding),
            password_parameters=tuple(offered),
            password_proofs=tuple(proofs),
            access_key_id="ak",
            remote_address="10.0.0.1:5000",
            transport="grpc",
        )
        outcome, _ = local.verify(entry, attempt, server_instance=SERVER, heartbeat_interval=30.0, now=NOW)
        assert isinstance(outcome, AuthDecision), outcome
        return outcome

    def ask_registry_gateway_side() -> object:
        handshake.verify(hello, nonce, SERVER, signature, binding)
        registry_pb2.GetPasswordParametersRequest(
            instance_uid=hello.instance_uid, public_key=public
        ).SerializeToString()
        return registry_pb2.AuthenticateCollectorRequest(
            hello=hello,
            nonce=nonce,
            signature=signature,
            remote_address="10.0.0.1:5000",
            gateway_id="gw",
            session_id="s",
            transport="grpc",
            access_key_id="ak",
            handshake_hash=binding,
            password_parameters=offered,
            password_proofs=proofs,
        ).SerializeToString()

    def ed25519_only() -> object:
        return handshake.verify(hello, nonce, SERVER, signature, binding)

    return decide_locally, ask_registry_gateway_side, ed25519_only


def cpu_us(work: Callable[[], object], seconds: float) -> float:
    """CPU microseconds per call over a run of about `seconds` of CPU."""
    count = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(50):
            work()
        count += 50
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "known_collector_handshakes.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = {}
    for name, previous in (("one password", False), ("during a password overlap", True)):
        decide, ask, floor = setup(previous)
        runs: dict[str, list[float]] = {"decide locally": [], "ask the registry (gateway side)": [], "ed25519": []}
        for _ in range(args.repeats):
            runs["decide locally"].append(cpu_us(decide, args.seconds))
            runs["ask the registry (gateway side)"].append(cpu_us(ask, args.seconds))
            runs["ed25519"].append(cpu_us(floor, args.seconds))
        rows[name] = {
            k: {"median_us": statistics.median(v), "runs_us": [round(x, 1) for x in v]} for k, v in runs.items()
        }
    noise_half = NOISE_IK_BOTH_ENDS_US / 2
    print("| credentials | work per handshake | CPU us, median | per CPU-second | ceiling per core, with Noise |")
    print("|---|---|---|---|---|")
    for name, figures in rows.items():
        for work, figure in figures.items():
            us = figure["median_us"]
            ceiling = {
                "decide locally": f"gateway {1e6 / (us + noise_half):,.0f}/s",
                "ask the registry (gateway side)": f"gateway {1e6 / (us + noise_half):,.0f}/s, but the registry "
                f"{1e6 / REGISTRY_CPU_US[1]:.0f}-{1e6 / REGISTRY_CPU_US[0]:.0f}/s for all gateways",
            }.get(work, "—")
            print(f"| {name} | {work} | {us:.0f} | {1e6 / us:,.0f} | {ceiling} |")
    load_after = os.getloadavg()
    result = {
        "figure": "known_collector_handshakes",
        "settings": {"seconds": args.seconds, "repeats": args.repeats, "noise_ik_both_ends_us": NOISE_IK_BOTH_ENDS_US},
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}; wrote {args.json}")


if __name__ == "__main__":
    main()
