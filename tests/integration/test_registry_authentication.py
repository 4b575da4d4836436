"""AuthenticateCollector against the real registry server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from outpost.registry.v1 import registry_pb2
from outpost.session import handshake
from services.registry.store.models import CollectorRow
from tests.integration.test_registry_support import (
    ACCEPTED,
    CS,
    REFUSED,
    FakeCollector,
    R,
    announce,
    get,
    register,
    running_registry,
)


async def test_unknown_collector_is_stored_as_pending_with_its_identity(database_url: str) -> None:
    async with running_registry(database_url, heartbeat_interval=17) as registry:
        collector = FakeCollector("edge-7", zone="site-a", version="2.0.1")
        before = datetime.now(UTC) - timedelta(seconds=1)

        response = await collector.authenticate(
            registry, remote_address="203.0.113.9:40000", gateway_id="gw-a", transport="websocket"
        )

        assert response.decision == ACCEPTED, response.message
        assert response.state == CS.COLLECTOR_STATE_PENDING
        assert response.fingerprint == handshake.fingerprint(collector.public_key)
        assert response.fingerprint.startswith("SHA256:")
        assert response.server_instance == registry.server_instance
        assert response.heartbeat_interval_seconds == 17
        assert response.revision > 0
        stored = await get(registry, "edge-7")
        assert stored.instance_uid == collector.instance_uid
        assert stored.state == CS.COLLECTOR_STATE_PENDING
        assert stored.fingerprint == response.fingerprint
        assert (stored.zone, stored.version, stored.username) == ("site-a", "2.0.1", "svc-outpost")
        assert stored.remote_address == "203.0.113.9:40000"
        assert (stored.gateway_id, stored.transport) == ("gw-a", "websocket")
        assert stored.connected
        assert stored.revision == response.revision
        assert stored.first_seen.ToDatetime(UTC) >= before
        assert stored.last_seen.ToDatetime(UTC) == stored.first_seen.ToDatetime(UTC)
        pending = await registry.stub.ListCollectors(
            registry_pb2.ListCollectorsRequest(state=CS.COLLECTOR_STATE_PENDING)
        )
        assert [c.name for c in pending.collectors] == ["edge-7"]


async def test_known_collector_reconnecting_is_accepted_in_its_state_and_updated(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        first = await get(registry, "edge-7")
        collector.version = "2.1.0"

        response = await collector.authenticate(registry, remote_address="192.0.2.1:1")

        assert response.decision == ACCEPTED
        assert response.state == CS.COLLECTOR_STATE_PENDING
        assert response.revision == first.revision
        again = await get(registry, "edge-7")
        assert (again.zone, again.version, again.remote_address) == ("dmz", "2.1.0", "192.0.2.1:1")
        assert (response.name, response.zone) == ("edge-7", "dmz")
        assert again.first_seen == first.first_seen
        assert again.last_seen.ToDatetime() >= first.last_seen.ToDatetime()


async def test_pending_collector_reinstalled_with_a_new_password_registers_with_the_new_one(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        collector.verifier = collector.verifier_for("the-new-password")
        await collector.authenticate(registry)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(registry, "edge-7")  # the old password
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        registered = await register(registry, "edge-7", password="the-new-password")
        assert registered.state == CS.COLLECTOR_STATE_ENABLED


async def test_registered_collector_reconnects_in_its_registered_state(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        registered = await register(registry, "edge-7", enable=False)

        response = await collector.authenticate(registry)

        assert response.decision == ACCEPTED
        assert response.state == CS.COLLECTOR_STATE_DISABLED
        assert response.revision == registered.revision
        assert response.state_changed_by == "alice"
        assert response.state_reason == "registered by alice"


async def test_bad_signature_is_refused_and_nothing_is_stored(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-7")
        request = collector.request(registry.server_instance)
        request.signature = Ed25519PrivateKey.generate().sign(
            handshake.transcript(request.hello, request.nonce, registry.server_instance)
        )

        response = await registry.stub.AuthenticateCollector(request)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert response.message == "handshake proof did not verify"
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []


async def test_proof_signed_for_another_server_instance_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        request = FakeCollector("edge-7").request("some-other-instance")

        response = await registry.stub.AuthenticateCollector(request)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED


async def test_replayed_handshake_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7")
        offered = await collector.password_parameters(registry)
        recorded = collector.request(registry.server_instance, password_parameters=offered)
        assert (await registry.stub.AuthenticateCollector(recorded)).decision == ACCEPTED

        replayed = registry_pb2.AuthenticateCollectorRequest()
        replayed.CopyFrom(recorded)
        replayed.nonce = handshake.new_nonce(int(datetime.now(UTC).timestamp() * 1000))  # the gateway's fresh challenge
        response = await registry.stub.AuthenticateCollector(replayed)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert response.message == "handshake proof did not verify"


async def test_collector_bound_to_another_instance_is_refused_naming_both(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        other_instance = "0b7f6f3e-5d1c-4c1e-9f5e-3a0c2f1d9e88"
        collector = FakeCollector("edge-7", bound_server_instance=other_instance)

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE
        assert response.message == (
            f"collector 'edge-7' is bound to server instance {other_instance}, "
            f"not {registry.server_instance}; reinstall it (fresh data directory) to move it"
        )


async def test_collector_bound_to_this_instance_is_accepted(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-7", bound_server_instance=registry.server_instance)
        assert (await collector.authenticate(registry)).decision == ACCEPTED


SALT, HASH = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"


@pytest.mark.parametrize(
    ("verifier", "complaint"),
    [
        (f"$argon2id$v=19$m=4194304,t=3,p=4${SALT}${HASH}", "memory cost m=4194304"),
        (f"$argon2id$v=19$m=65536,t=1000,p=4${SALT}${HASH}", "time cost t=1000"),
        (f"$argon2id$v=19$m=65536,t=3,p=255${SALT}${HASH}", "parallelism p=255"),
        (f"$argon2i$v=19$m=65536,t=3,p=4${SALT}${HASH}", "not an argon2id"),
        ("plain-text-password", "not an argon2id"),
        ("", "not an argon2id"),
    ],
)
async def test_hostile_or_malformed_verifier_is_refused(database_url: str, verifier: str, complaint: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-7", verifier=verifier)

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert complaint in response.message
        assert "edge-7" in response.message
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []


async def test_second_key_claiming_a_held_name_is_refused_and_listed_as_a_conflict(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        first = await announce(registry, "edge-7")
        registered = await register(registry, "edge-7")
        impostor = FakeCollector("edge-7")

        responses = [await impostor.authenticate(registry, remote_address="203.0.113.66:1") for _ in range(2)]

        for response in responses:
            assert response.decision == REFUSED
            assert response.refusal == R.DISCONNECT_REASON_NAME_CONFLICT
            assert response.message == (
                f"name 'edge-7' is already held by collector {first.fingerprint}; "
                "an admin must remove it first, or install this one under another name"
            )
        conflicts = (await registry.stub.ListNameConflicts(registry_pb2.ListNameConflictsRequest())).conflicts
        assert len(conflicts) == 1
        conflict = conflicts[0]
        assert (conflict.name, conflict.instance_uid) == ("edge-7", impostor.instance_uid)
        assert conflict.fingerprint == impostor.fingerprint
        assert conflict.held_by_fingerprint == first.fingerprint
        assert conflict.remote_address == "203.0.113.66:1"
        assert conflict.attempts == 2
        assert conflict.last_seen.ToDatetime() >= conflict.first_seen.ToDatetime()
        untouched = await get(registry, "edge-7")
        assert untouched.instance_uid == first.instance_uid
        assert untouched.fingerprint == first.fingerprint
        assert untouched.state == CS.COLLECTOR_STATE_ENABLED
        assert untouched.revision == registered.revision


async def test_name_conflict_clears_once_the_holder_is_removed_and_newcomer_returns(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        newcomer = FakeCollector("edge-7")
        assert (await newcomer.authenticate(registry)).decision == REFUSED
        await registry.stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name="edge-7"))

        response = await newcomer.authenticate(registry)

        assert response.decision == ACCEPTED
        assert (await get(registry, "edge-7")).instance_uid == newcomer.instance_uid
        conflicts = await registry.stub.ListNameConflicts(registry_pb2.ListNameConflictsRequest())
        assert list(conflicts.conflicts) == []


async def test_known_collector_presenting_another_key_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        original = await announce(registry, "edge-7")
        thief = FakeCollector("edge-7", instance_uid=original.instance_uid)

        response = await thief.authenticate(registry)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert response.message == ("public key does not match the one on record for collector 'edge-7'")
        assert (await get(registry, "edge-7")).fingerprint == original.fingerprint


async def test_hello_without_identity_is_an_invalid_argument(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("")

        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await collector.authenticate(registry)

        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failed.value.details() == "hello.name is required"


async def test_simultaneous_first_contacts_for_one_name_let_exactly_one_win(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        rivals = [FakeCollector("edge-7") for _ in range(6)]

        responses = await asyncio.gather(*(rival.authenticate(registry) for rival in rivals))

        decisions = sorted(r.decision for r in responses)
        assert decisions == [ACCEPTED] + [REFUSED] * 5
        assert {r.refusal for r in responses if r.decision == REFUSED} == {R.DISCONNECT_REASON_NAME_CONFLICT}
        winner = next(c for c, r in zip(rivals, responses, strict=True) if r.decision == ACCEPTED)
        assert (await get(registry, "edge-7")).instance_uid == winner.instance_uid


async def test_one_collector_arriving_through_two_gateways_at_once_is_stored_once(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-7")

        responses = await asyncio.gather(
            collector.authenticate(registry, gateway_id="gw-1"),
            collector.authenticate(registry, gateway_id="gw-2"),
        )

        assert [r.decision for r in responses] == [ACCEPTED, ACCEPTED]
        assert {r.revision for r in responses} == {(await get(registry, "edge-7")).revision}
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert len(listed.collectors) == 1


async def test_a_sealed_sessions_proof_verifies_only_with_its_handshake_hash_and_records_the_access_key(
    database_url: str,
) -> None:
    """Channel binding (ADR 0019): the proof signs the Noise handshake hash the gateway reports."""
    async with running_registry(database_url) as registry:
        collector = FakeCollector("edge-sealed")
        request = collector.request(registry.server_instance, issued_at=registry.clock())
        handshake_hash = secrets.token_bytes(32)
        request.signature = handshake.sign(
            collector.key, request.hello, request.nonce, registry.server_instance, handshake_hash
        )
        request.access_key_id = "ak_site_a"
        request.handshake_hash = secrets.token_bytes(32)  # another session's hash: a moved proof
        moved = await registry.stub.AuthenticateCollector(request)
        assert moved.decision == REFUSED and moved.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED

        fresh = collector.request(registry.server_instance, issued_at=registry.clock())
        fresh.signature = handshake.sign(
            collector.key, fresh.hello, fresh.nonce, registry.server_instance, handshake_hash
        )
        fresh.access_key_id, fresh.handshake_hash = "ak_site_a", handshake_hash
        accepted = await registry.stub.AuthenticateCollector(fresh)
        assert accepted.decision == ACCEPTED, accepted.message

        async with registry.server.store.read() as tx:
            stored = await tx.session.scalar(
                sa.select(CollectorRow.access_key_id).where(CollectorRow.name == "edge-sealed")
            )
    assert stored == "ak_site_a"
