"""RotateCollectorKey against the real registry server, on SQLite and PostgreSQL (ADR 0024).

The gateway forwards a collector's KeyRotation with the session id and handshake hash of
the session it terminated; the registry checks both signatures against the key on
record and that hash, replaces the key atomically, audits it, and changes nothing else.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from outpost.agent.v1 import agent_pb2
from outpost.audit.v1 import audit_pb2, audit_pb2_grpc
from outpost.registry.v1 import registry_pb2
from outpost.session import handshake, key_rotation
from tests.integration.test_registry_support import (
    ACCEPTED,
    CS,
    REFUSED,
    FakeCollector,
    R,
    RunningRegistry,
    announce,
    get,
    register,
    running_registry,
)

HASH = secrets.token_bytes(32)


async def _connected(registry: RunningRegistry, name: str) -> tuple[FakeCollector, str]:
    """A registered collector with a live session: (collector, that session's id)."""
    collector = await announce(registry, name)
    await register(registry, name, enable=True)
    session_id = secrets.token_hex(8)
    response = await collector.authenticate(registry, session_id=session_id)
    assert response.decision == ACCEPTED, response.message
    return collector, session_id


def _request(
    collector: FakeCollector,
    session_id: str,
    rotation: agent_pb2.KeyRotation,
    *,
    handshake_hash: bytes = HASH,
) -> registry_pb2.RotateCollectorKeyRequest:
    return registry_pb2.RotateCollectorKeyRequest(
        instance_uid=collector.instance_uid,
        old_public_key=collector.public_key,
        rotation=rotation,
        handshake_hash=handshake_hash,
        session_id=session_id,
        gateway_id="gw-1",
        remote_address="198.51.100.7:50123",
    )


async def test_a_rotation_replaces_the_key_keeps_everything_else_and_is_audited(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector, session_id = await _connected(registry, "edge-1")
        before = await get(registry, "edge-1")
        new_key = Ed25519PrivateKey.generate()
        rotation = key_rotation.build(collector.instance_uid, collector.key, new_key, HASH)

        response = await registry.stub.RotateCollectorKey(_request(collector, session_id, rotation))

        new_fingerprint = handshake.fingerprint(rotation.new_public_key)
        assert response.result.accepted, response.result.reason
        assert response.result.fingerprint == new_fingerprint
        after = await get(registry, "edge-1")
        assert after.fingerprint == new_fingerprint != before.fingerprint
        assert after.key_rotated_at.ToDatetime(UTC) > datetime.now(UTC) - timedelta(minutes=1)
        assert (after.state, after.name, after.zone, after.revision) == (
            before.state,
            before.name,
            before.zone,
            before.revision,
        )
        assert not before.HasField("key_rotated_at")

        audit = audit_pb2_grpc.AuditServiceStub(registry.channel)
        events = (await audit.ListAuditEvents(audit_pb2.ListAuditEventsRequest(limit=100))).events
        rotated = [e for e in events if e.method == "RotateCollectorKey"]
        assert [(e.principal, e.target, e.outcome) for e in rotated] == [("collector:edge-1", "edge-1", "ok")]
        assert before.fingerprint in rotated[0].detail and new_fingerprint in rotated[0].detail

        # The old key is refused from now on; the new one is accepted without any admin step.
        old = await collector.authenticate(registry)
        assert old.decision == REFUSED and old.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        collector.key = new_key
        new = await collector.authenticate(registry)
        assert new.decision == ACCEPTED, new.message
        assert (new.state, new.fingerprint) == (CS.COLLECTOR_STATE_ENABLED, new_fingerprint)


async def test_forged_replayed_or_unproven_rotations_are_refused_and_change_nothing(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector, session_id = await _connected(registry, "edge-1")
        victim_key = await announce(registry, "edge-2")
        new_key = Ed25519PrivateKey.generate()
        good = key_rotation.build(collector.instance_uid, collector.key, new_key, HASH)
        forged = key_rotation.build(collector.instance_uid, Ed25519PrivateKey.generate(), new_key, HASH)
        forged.new_public_key = good.new_public_key
        other_session = key_rotation.build(collector.instance_uid, collector.key, new_key, secrets.token_bytes(32))
        unproven = agent_pb2.KeyRotation()
        unproven.CopyFrom(good)
        unproven.ClearField("new_key_signature")
        someone_elses = key_rotation.build(collector.instance_uid, collector.key, victim_key.key, HASH)
        cases = {
            "bad old-key signature": (_request(collector, session_id, forged), "key on record"),
            "another session's hash": (_request(collector, session_id, other_session), "key on record"),
            "no new-key signature": (_request(collector, session_id, unproven), "proof of possession"),
            "stale session": (_request(collector, "not-the-session", good), "current session"),
            "unsealed session": (_request(collector, session_id, good, handshake_hash=b""), "sealed session"),
            "another collector's key": (_request(collector, session_id, someone_elses), "another collector"),
        }
        before = await get(registry, "edge-1")
        for what, (request, reason) in cases.items():
            response = await registry.stub.RotateCollectorKey(request)
            assert not response.result.accepted, what
            assert reason in response.result.reason, (what, response.result.reason)
            assert response.result.fingerprint == before.fingerprint, what
        after = await get(registry, "edge-1")
        assert after.fingerprint == before.fingerprint
        assert not after.HasField("key_rotated_at")


async def test_a_pending_collector_cannot_rotate_and_a_rotation_applies_once(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        pending = await announce(registry, "edge-p")
        session_id = secrets.token_hex(8)
        assert (await pending.authenticate(registry, session_id=session_id)).decision == ACCEPTED
        rotation = key_rotation.build(pending.instance_uid, pending.key, Ed25519PrivateKey.generate(), HASH)
        refused = await registry.stub.RotateCollectorKey(_request(pending, session_id, rotation))
        assert not refused.result.accepted and "register it first" in refused.result.reason

        collector, session_id = await _connected(registry, "edge-1")
        rotation = key_rotation.build(collector.instance_uid, collector.key, Ed25519PrivateKey.generate(), HASH)
        first = await registry.stub.RotateCollectorKey(_request(collector, session_id, rotation))
        again = await registry.stub.RotateCollectorKey(_request(collector, session_id, rotation))
        assert first.result.accepted
        assert not again.result.accepted and again.result.fingerprint == first.result.fingerprint
