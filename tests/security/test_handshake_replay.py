"""A captured handshake is worth nothing: nonces carry their issue time and are single-use.

The gateway issues each challenge nonce with its issue time in the first 8 bytes; the
collector signs it whole. The registry refuses a proof over a nonce outside a short
window around its clock, and over a nonce it accepted before, whichever replica accepted
it (the nonce is a unique key in the registry's database). Registry in-process with a
`FakeCollector`, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from outpost.registry.v1 import registry_pb2
from outpost.session import handshake
from services.registry.domain.authentication import NONCE_MAX_AGE, NONCE_MAX_AHEAD
from services.registry.store.models import HandshakeNonceRow
from tests.integration.test_registry_support import (
    ACCEPTED,
    REFUSED,
    FakeCollector,
    ManualClock,
    R,
    announce,
    get,
    register,
    running_registry,
)


async def test_the_same_signed_handshake_sent_twice_is_refused_the_second_time(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7")
        # The whole handshake of a registered collector, its service-password proof included (ADR 0025).
        offered = await collector.password_parameters(registry)
        captured = collector.request(registry.server_instance, issued_at=registry.clock(), password_parameters=offered)
        assert len(captured.password_proofs) == 1

        first = await registry.stub.AuthenticateCollector(captured)
        replayed = await registry.stub.AuthenticateCollector(captured)

        assert first.decision == ACCEPTED
        assert replayed.decision == REFUSED
        assert replayed.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert "handshake nonce was already used: a replayed handshake" in replayed.message


async def test_a_replayed_first_contact_does_not_announce_anything(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-7")
        captured = collector.request(registry.server_instance, issued_at=registry.clock())
        assert (await registry.stub.AuthenticateCollector(captured)).decision == ACCEPTED
        await registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name="edge-7"))

        replayed = await registry.stub.AuthenticateCollector(captured)

        assert replayed.decision == REFUSED
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []


async def test_a_replay_to_another_registry_replica_on_the_same_database_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as first, running_registry(database_url) as second:
        collector = await announce(first, "edge-7")
        captured = collector.request(first.server_instance, issued_at=first.clock())

        assert (await first.stub.AuthenticateCollector(captured)).decision == ACCEPTED
        replayed = await second.stub.AuthenticateCollector(captured)

        assert replayed.decision == REFUSED
        assert "already used" in replayed.message


async def test_a_stale_nonce_is_refused_even_with_a_valid_signature(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        last_seen = (await get(registry, "edge-7")).last_seen

        captured_long_ago = collector.request(
            registry.server_instance, issued_at=clock.now - NONCE_MAX_AGE - timedelta(seconds=1)
        )
        response = await registry.stub.AuthenticateCollector(captured_long_ago)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert "handshake nonce was issued 121 s ago (at most 120 s are accepted)" in response.message
        assert (await get(registry, "edge-7")).last_seen == last_seen


async def test_a_nonce_from_the_future_or_without_a_time_is_refused(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        collector = await announce(registry, "edge-7")

        ahead = collector.request(registry.server_instance, issued_at=clock.now + NONCE_MAX_AHEAD * 2)
        untimed = collector.request(registry.server_instance, nonce=bytes(handshake.NONCE_BYTES))

        assert "in the future" in (await registry.stub.AuthenticateCollector(ahead)).message
        assert "ago" in (await registry.stub.AuthenticateCollector(untimed)).message


async def test_a_nonce_is_remembered_only_until_it_would_be_refused_as_stale(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        captured = collector.request(registry.server_instance, issued_at=clock.now)
        assert (await registry.stub.AuthenticateCollector(captured)).decision == ACCEPTED

        clock.advance(NONCE_MAX_AGE.total_seconds() + 1)
        assert (await collector.authenticate(registry)).decision == ACCEPTED  # purges on the way
        stale_again = await registry.stub.AuthenticateCollector(captured)

        assert stale_again.decision == REFUSED
        assert "ago" in stale_again.message  # refused by its age: the row is no longer needed
        async with registry.server.store.read() as tx:
            kept = await tx.session.scalar(sa.select(sa.func.count()).select_from(HandshakeNonceRow))
        assert kept == 1  # only the nonce accepted after the purge
