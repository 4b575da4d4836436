"""What sealing a credential set costs: HPKE (RFC 9180) beside the legacy ECIES, same run.

    .venv/bin/python bench/sealing_cost.py [--ops 4000] [--rounds 8]
        [--json bench/results/sealing_cost.json]

Theory of operation
-------------------
`outpost.sealing` seals each job run's `CredentialSet` once, in the registry
(`SealCredentials`), and the collector opens it once when the run starts. Two algorithms
(ADR 0020): HPKE base mode through `cryptography`'s `hpke.Suite` (written to collectors
that list it), and the legacy ECIES built from `cryptography` primitives (X25519, HKDF,
ChaCha20-Poly1305; written to collectors that do not). Both do one X25519 key generation
and one X25519 exchange to seal, one exchange to open, a few HMAC-SHA256 and one AEAD.

Rows, each timed one call at a time with `time.perf_counter_ns` (µs per call, median and
p90 by nearest rank): `seal` and `open_sealed` for each algorithm and payload, and two
bare baselines in the same run — ChaCha20-Poly1305 encrypt of the same payload under a
fixed key (the AEAD alone) and one X25519 generate + exchange (the asymmetric floor of
every seal). To spread drift in a shared machine's load evenly, the `--ops` calls of each
row are made in `--rounds` rounds, every row taking its turn in each round.

Payloads: a `CredentialSet` of one SNMPv2c community ("community"), and one of an SNMPv2c
community, an SNMPv3 user and an SSH login with an Ed25519 private key in PEM ("mixed").
Bytes: the serialized `SealedSecret` beside the plaintext (what a `JobAssignment` grows by).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from harness.machine import finish, machine, markdown_table

from outpost import sealing
from outpost.agent.v1 import agent_pb2

CONTEXT = "0d6a3f52-3c1e-4e0b-9a51-7f3b2c9d8e10"  # a job run id, as the registry passes it
WARM_UP = 200


def payloads() -> dict[str, bytes]:
    community = agent_pb2.Credential(name="lab-v2c", snmp_v2c=agent_pb2.SnmpV2c(community="c0mmunity-string-1"))
    v3 = agent_pb2.Credential(
        name="core-v3",
        snmp_v3=agent_pb2.SnmpV3(
            username="monitor",
            auth_protocol="SHA256",
            auth_key="auth-key-123456",
            priv_protocol="AES256",
            priv_key="p" * 16,
        ),
    )
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    login = agent_pb2.Credential(
        name="core-ssh", ssh=agent_pb2.SshLogin(username="netops", password="pw-123456", private_key_pem=pem.decode())
    )
    return {
        "community": agent_pb2.CredentialSet(credentials=[community]).SerializeToString(),
        "mixed": agent_pb2.CredentialSet(credentials=[community, v3, login]).SerializeToString(),
    }


def percentile(ordered: list[float], pct: float) -> float:
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rows(recipient: X25519PrivateKey) -> list[tuple[str, str, str, Callable[[], Any]]]:
    """(operation, algorithm, payload, call)."""
    public = sealing.public_key_bytes(recipient)
    aead = ChaCha20Poly1305(ChaCha20Poly1305.generate_key())
    nonce = bytes(12)
    peer = X25519PrivateKey.generate().public_key()
    found: list[tuple[str, str, str, Callable[[], Any]]] = [
        ("X25519 generate + exchange", "bare", "-", lambda: X25519PrivateKey.generate().exchange(peer)),
    ]
    for name, plaintext in payloads().items():
        found.append(("ChaCha20-Poly1305 encrypt", "bare", name, lambda p=plaintext: aead.encrypt(nonce, p, None)))
        for algorithm in (sealing.LEGACY_ALGORITHM, sealing.HPKE_ALGORITHM):
            sealed = sealing.seal(public, plaintext, CONTEXT, algorithm=algorithm)
            found.append(
                (
                    "seal",
                    algorithm,
                    name,
                    lambda p=plaintext, a=algorithm: sealing.seal(public, p, CONTEXT, algorithm=a),
                )
            )
            found.append(("open", algorithm, name, lambda s=sealed: sealing.open_sealed(recipient, s, CONTEXT)))
    return found


def measure(ops: int, rounds: int) -> dict[str, Any]:
    recipient = X25519PrivateKey.generate()
    table = rows(recipient)
    samples: dict[int, list[float]] = {i: [] for i in range(len(table))}
    for _, _, _, call in table:
        for _ in range(WARM_UP):
            call()
    clock = time.perf_counter_ns
    per_round = max(1, ops // rounds)
    for _ in range(rounds):
        for index, (_, _, _, call) in enumerate(table):
            times = samples[index]
            for _ in range(per_round):
                started = clock()
                call()
                times.append((clock() - started) / 1000)
    measured = []
    for index, (operation, algorithm, payload, _) in enumerate(table):
        us = sorted(samples[index])
        measured.append(
            {
                "operation": operation,
                "algorithm": algorithm,
                "payload": payload,
                "calls": len(us),
                "p50_us": round(percentile(us, 50), 1),
                "p90_us": round(percentile(us, 90), 1),
                "mean_us": round(statistics.fmean(us), 1),
            }
        )
    public = sealing.public_key_bytes(recipient)
    sizes = []
    for name, plaintext in payloads().items():
        for algorithm in (sealing.LEGACY_ALGORITHM, sealing.HPKE_ALGORITHM):
            sealed = sealing.seal(public, plaintext, CONTEXT, algorithm=algorithm)
            wire = len(sealed.SerializeToString())
            sizes.append(
                {
                    "payload": name,
                    "algorithm": algorithm,
                    "plaintext_bytes": len(plaintext),
                    "sealed_bytes": wire,
                    "overhead_bytes": wire - len(plaintext),
                    "context_bytes": len(CONTEXT),
                }
            )
    return {"rows": measured, "sizes": sizes}


def ratio(rows_: list[dict[str, Any]], operation: str, payload: str) -> float:
    by = {(r["operation"], r["algorithm"], r["payload"]): r["p50_us"] for r in rows_}
    return round(
        by[(operation, sealing.HPKE_ALGORITHM, payload)] / by[(operation, sealing.LEGACY_ALGORITHM, payload)], 2
    )


def render(results: dict[str, Any]) -> str:
    short = {sealing.HPKE_ALGORITHM: "HPKE", sealing.LEGACY_ALGORITHM: "legacy ECIES", "bare": "bare"}
    lines = [("operation", "algorithm", "payload", "p50 µs", "p90 µs", "HPKE / legacy (p50)")]
    for r in results["rows"]:
        versus = ""
        if r["algorithm"] == sealing.HPKE_ALGORITHM:
            versus = f"{ratio(results['rows'], r['operation'], r['payload']):.2f}x"
        lines.append(
            (r["operation"], short[r["algorithm"]], r["payload"], f"{r['p50_us']:.1f}", f"{r['p90_us']:.1f}", versus)
        )
    sizes = [("payload", "algorithm", "plaintext B", "SealedSecret B", "overhead B")]
    for s in results["sizes"]:
        sizes.append(
            (
                s["payload"],
                short[s["algorithm"]],
                str(s["plaintext_bytes"]),
                str(s["sealed_bytes"]),
                str(s["overhead_bytes"]),
            )
        )
    return markdown_table(lines) + "\n\n" + markdown_table(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000, help="calls per row, spread over the rounds")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "sealing_cost.json")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "ops": args.ops, "rounds": args.rounds}
    results.update(measure(args.ops, args.rounds))
    import cryptography

    results["cryptography"] = cryptography.__version__
    finish(results, render(results), args.json, started)


if __name__ == "__main__":
    sys.exit(main())
