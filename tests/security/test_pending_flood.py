"""A flood of 1,500 fresh keys against the real registry (in-process, SQLite and PostgreSQL).

Anyone who can reach a gateway can announce fresh keys. The pending bounds must hold
(in all and per source network), registered collectors must never be pushed out or
refused, a known pending collector must get back in, and the refusals must not turn into
one database write each (their evidence is kept within a budget and counted beyond it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from prometheus_client import REGISTRY

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2
from outpost.session import handshake
from services.registry.domain.pending_limits import EVIDENCE_PER_MINUTE, PendingLimits, source_network
from services.registry.store.models import HandshakeRefusalRow
from tests.integration.test_registry_support import (
    ACCEPTED,
    CANARY_PASSWORD,
    CS,
    FAST_HASHER,
    REFUSED,
    USERNAME,
    FakeCollector,
    ManualClock,
    R,
    RunningRegistry,
    announce,
    get,
    register,
    running_registry,
)

LIMITS = PendingLimits(max_pending=20, max_per_network=5)
# Enough to fill both bounds many times over and to overrun the evidence budget 20-fold;
# how many handshakes/s the registry holds is measured in bench/, not here.
FRESH_KEYS = 1_500
ONE_NETWORK_FIRST = 300  # of them, from 203.0.113.0/24 before the rest spread out
SPREAD_NETWORKS = 50
CONCURRENCY = 32
CALL_DEADLINE_SECONDS = 120
VERIFIER = FAST_HASHER.hash(CANARY_PASSWORD)  # one argon2 hash for every identity: cheap


def fresh_requests(server_instance: str, now_ms: int) -> Iterator[registry_pb2.AuthenticateCollectorRequest]:
    """Signed first contacts of never-seen keys; the first ones all from one /24."""
    for i in range(FRESH_KEYS):
        key = Ed25519PrivateKey.generate()
        if i < ONE_NETWORK_FIRST:
            address = f"203.0.113.{i % 250 + 1}:{40000 + i}"
        else:
            address = f"10.{i % SPREAD_NETWORKS}.{i // SPREAD_NETWORKS % 250}.9:{30000 + i % 20000}"
        hello = agent_pb2.Hello(
            protocol_version=1,
            instance_uid=str(uuid.uuid4()),
            name=f"fresh-{i}",
            zone="flood",
            version="1.2.3",
            public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
            username=USERNAME,
            password_verifier=VERIFIER,
        )
        nonce = handshake.new_nonce(now_ms)  # issued "now" on the registry's clock
        yield registry_pb2.AuthenticateCollectorRequest(
            hello=hello,
            nonce=nonce,
            signature=handshake.sign(key, hello, nonce, server_instance),
            remote_address=address,
            gateway_id="gw-flood",
            session_id=uuid.uuid4().hex,
            transport="http_poll",
        )


async def flood(registry: RunningRegistry) -> list[tuple[str, registry_pb2.AuthenticateCollectorResponse]]:
    """Every fresh request, CONCURRENCY at a time; (remote address, response) in order."""
    requests = list(fresh_requests(registry.server_instance, int(registry.clock().timestamp() * 1000)))
    results: list[tuple[str, registry_pb2.AuthenticateCollectorResponse]] = []
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(request: registry_pb2.AuthenticateCollectorRequest) -> None:
        async with semaphore:
            # A hang guard, not a speed claim: the handshakes share one process (test and
            # registry) and, on SQLite, one writer; capacity is measured in bench/.
            response = await registry.stub.AuthenticateCollector(request, timeout=CALL_DEADLINE_SECONDS)
        results.append((request.remote_address, response))

    first, rest = requests[:ONE_NETWORK_FIRST], requests[ONE_NETWORK_FIRST:]
    await asyncio.gather(*(one(r) for r in first))
    await asyncio.gather(*(one(r) for r in rest))
    return results


def unrecorded() -> float:
    value = REGISTRY.get_sample_value("outpost_registry_refusals_unrecorded_total", {"reason": "pending_limit"})
    return value or 0.0


@pytest.mark.timeout(600)
async def test_a_flood_of_fresh_keys_does_not_push_out_registered_collectors_and_the_pending_bound_holds(
    database_url: str,
) -> None:
    clock = ManualClock()  # the evidence budget refills with the registry's clock: held still
    async with running_registry(database_url, clock=clock, pending_limits=LIMITS) as registry:
        enabled = await announce(registry, "edge-enabled")
        disabled = await announce(registry, "edge-disabled")
        await register(registry, "edge-enabled")
        await register(registry, "edge-disabled", enable=False)
        waiting = await announce(registry, "edge-waiting", verifier=VERIFIER, zone="dmz")
        unrecorded_before = unrecorded()

        results = await flood(registry)

        accepted = [(address, r) for address, r in results if r.decision == ACCEPTED]
        refused = [r for _, r in results if r.decision == REFUSED]
        assert len(results) == FRESH_KEYS
        assert len(accepted) == LIMITS.max_pending - 1  # edge-waiting holds one place
        assert len(refused) == FRESH_KEYS - len(accepted)
        assert all(r.refusal == R.DISCONNECT_REASON_RATE_LIMITED and r.retry_after_seconds > 0 for r in refused)
        assert all("an admin must register or remove some" in r.message for r in refused)
        assert any(
            r.message.startswith("too many collectors waiting for registration from 203.0.113.0/24") for r in refused
        )
        per_network = Counter(source_network(address) for address, _ in accepted)
        assert per_network["203.0.113.0/24"] == LIMITS.max_per_network
        assert max(per_network.values()) <= LIMITS.max_per_network

        pending = await registry.stub.ListCollectors(
            registry_pb2.ListCollectorsRequest(state=CS.COLLECTOR_STATE_PENDING)
        )
        assert len(pending.collectors) == LIMITS.max_pending
        assert (await get(registry, "edge-enabled")).state == CS.COLLECTOR_STATE_ENABLED
        assert (await get(registry, "edge-disabled")).state == CS.COLLECTOR_STATE_DISABLED

        # Known collectors get in, even from the full network and with the list full.
        for collector, state in (
            (enabled, CS.COLLECTOR_STATE_ENABLED),
            (disabled, CS.COLLECTOR_STATE_DISABLED),
            (waiting, CS.COLLECTOR_STATE_PENDING),
        ):
            response = await collector.authenticate(registry, remote_address="203.0.113.77:5000")
            assert (response.decision, response.state) == (ACCEPTED, state), response.message

        # Refusals cost no write each: evidence within the budget, the rest counted.
        async with registry.server.store.read() as tx:
            rows = await tx.session.scalar(sa.select(sa.func.count()).select_from(HandshakeRefusalRow))
        assert rows is not None and rows <= EVIDENCE_PER_MINUTE
        assert unrecorded() - unrecorded_before >= len(refused) - EVIDENCE_PER_MINUTE

        # Room made by an admin lets the next newcomer in.
        await registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name="edge-waiting", actor="alice"))
        newcomer = FakeCollector("edge-new", verifier=VERIFIER)
        response = await newcomer.authenticate(registry, remote_address="192.0.2.10:4000")
        assert response.decision == ACCEPTED, response.message


async def test_a_newcomer_refused_for_the_pending_bound_is_explained_with_what_to_do(database_url: str) -> None:
    async with running_registry(
        database_url, pending_limits=PendingLimits(max_pending=1, max_per_network=1)
    ) as registry:
        await announce(registry, "edge-first", verifier=VERIFIER)
        late = FakeCollector("edge-late", verifier=VERIFIER)

        response = await late.authenticate(registry, remote_address="203.0.113.40:5000")

        assert (response.decision, response.refusal) == (REFUSED, R.DISCONNECT_REASON_RATE_LIMITED)
        explained = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-late"))
        assert not explained.live
        [finding] = [f for f in explained.findings if f.code == "pending_limit"]
        assert finding.severity == "error"
        assert "too many collectors waiting for registration" in finding.message
        assert "register" in finding.advice and "remove" in finding.advice and "reinstall" not in finding.advice
