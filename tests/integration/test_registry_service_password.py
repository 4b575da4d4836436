"""The service password as a handshake credential, against the real registry server, on SQLite
and PostgreSQL (ADR 0025): GetPasswordParameters, AuthenticateCollector's proofs,
SetCollectorPassword with its overlap, and who may call what."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from outpost import password_proof
from outpost.agent.v1 import agent_pb2
from outpost.audit.v1 import audit_pb2, audit_pb2_grpc
from outpost.db import create_engine, ensure_schema, is_sqlite
from outpost.registry.v1 import registry_pb2
from outpost.session import key_rotation
from services.registry.store.database import MIGRATIONS_DIR, SCHEMA
from tests.integration.test_registry_support import (
    ACCEPTED,
    CANARY_PASSWORD,
    REFUSED,
    FakeCollector,
    ManualClock,
    announce,
    get,
    register,
    running_registry,
)

R = agent_pb2.DisconnectReason
NEW_PASSWORD = "the-rotated-Pa55word-41c2"
DAY = 86_400
HANDSHAKE_HASH = bytes(range(32))


async def set_password(registry, name: str, password: str = NEW_PASSWORD, overlap: int = DAY):  # type: ignore[no-untyped-def]
    return await registry.stub.SetCollectorPassword(
        registry_pb2.SetCollectorPasswordRequest(name=name, password=password, overlap_seconds=overlap)
    )


async def test_a_registered_collector_with_a_wrong_password_is_refused_with_the_reason_and_nothing_changes(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7", enable=True)
        before = await get(registry, "edge-7")
        collector.password = "not-" + CANARY_PASSWORD  # the operator's file says something else

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert response.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert response.message.startswith("service password does not match the one on record for collector 'edge-7'")
        after = await get(registry, "edge-7")
        assert (after.state, after.revision, after.fingerprint) == (before.state, before.revision, before.fingerprint)
        assert after.password_last_proved == ""
        explained = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-7"))
        assert "service password does not match" in str(explained)


async def test_a_registered_collector_that_proves_no_password_is_told_to_upgrade(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7")

        response = await collector.authenticate(registry, password_parameters=[])

        assert response.decision == REFUSED
        assert "it sent no password proof: upgrade it" in response.message


async def test_parameters_go_only_to_a_registered_collector_presenting_its_key(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        assert await collector.password_parameters(registry) == []  # pending: the admin checks at register
        await register(registry, "edge-7")

        [offered] = await collector.password_parameters(registry)
        impostor = FakeCollector("edge-7", instance_uid=collector.instance_uid)
        unknown = FakeCollector("edge-8")

        assert offered.public_key == collector.public_key
        assert (offered.memory_kib, offered.time_cost, offered.parallelism) == (1024, 1, 1)  # the hello verifier's
        assert len(offered.salt) == 16
        assert await impostor.password_parameters(registry) == []
        assert await unknown.password_parameters(registry) == []
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        assert (await get(registry, "edge-7")).password_last_proved == "current"


async def test_set_password_keeps_the_old_one_for_the_overlap_then_refuses_it(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7", enable=True)

        reply = await set_password(registry, "edge-7", overlap=DAY)

        shown = reply.collector
        assert shown.password_on_record
        assert shown.password_rotated_at.ToDatetime().timestamp() == pytest.approx(clock().timestamp(), abs=1)
        assert shown.previous_password_accepted_until.ToDatetime().timestamp() == pytest.approx(
            clock().timestamp() + DAY, abs=1
        )
        offered = await collector.password_parameters(registry)
        assert len(offered) == 2
        assert (offered[0].memory_kib, offered[0].time_cost) == (19456, 2)  # computed by the registry
        # The file still holds the old password: accepted during the overlap.
        clock.advance(3600)
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        assert (await get(registry, "edge-7")).password_last_proved == "previous"
        # The operator edits the file: the new one is proven.
        collector.password = NEW_PASSWORD
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        assert (await get(registry, "edge-7")).password_last_proved == "current"
        # After the overlap the old one is refused, and no longer offered.
        clock.advance(DAY)
        assert len(await collector.password_parameters(registry)) == 1
        old = await collector.authenticate(
            registry, password_parameters=offered, password=CANARY_PASSWORD, issued_at=clock()
        )
        assert old.decision == REFUSED
        assert "service password does not match" in old.message
        shown = await get(registry, "edge-7")
        assert not shown.HasField("previous_password_accepted_until")
        assert (await collector.authenticate(registry)).decision == ACCEPTED


async def test_set_password_is_audited_and_never_records_the_password(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        await register(registry, "edge-7")

        await set_password(registry, "edge-7")

        audit = audit_pb2_grpc.AuditServiceStub(registry.channel)
        events = (await audit.ListAuditEvents(audit_pb2.ListAuditEventsRequest(limit=100))).events
        [event] = [e for e in events if e.method == "SetCollectorPassword"]
        assert (event.principal, event.target, event.outcome) == ("alice", "edge-7", "ok")
        assert NEW_PASSWORD not in str(events)


@pytest.mark.parametrize(
    ("name", "password", "overlap", "code", "message"),
    [
        ("edge-pending", NEW_PASSWORD, DAY, grpc.StatusCode.FAILED_PRECONDITION, "is pending"),
        ("edge-7", "", DAY, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ("edge-7", NEW_PASSWORD, 0, grpc.StatusCode.INVALID_ARGUMENT, "overlap must be between"),
        ("nobody", NEW_PASSWORD, DAY, grpc.StatusCode.NOT_FOUND, "nobody"),
    ],
)
async def test_set_password_refuses_what_it_cannot_do(
    database_url: str, name: str, password: str, overlap: int, code: grpc.StatusCode, message: str
) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        await register(registry, "edge-7")
        await announce(registry, "edge-pending")

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await set_password(registry, name, password, overlap)

        assert refused.value.code() == code
        assert message in (refused.value.details() or "")


async def test_get_password_parameters_is_the_gateways_only(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7")
        request = registry_pb2.GetPasswordParametersRequest(
            instance_uid=collector.instance_uid, public_key=collector.public_key
        )
        viewer = await registry.token("viewer-1", "viewer")
        cases = [
            (None, grpc.StatusCode.UNAUTHENTICATED),
            ("not-a-credential", grpc.StatusCode.UNAUTHENTICATED),
            (registry.credentials.admin, grpc.StatusCode.PERMISSION_DENIED),
            (viewer, grpc.StatusCode.PERMISSION_DENIED),
            (registry.credentials.identity("scheduler"), grpc.StatusCode.PERMISSION_DENIED),
        ]
        for secret, code in cases:
            async with registry.stub_as(secret) as stub:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.GetPasswordParameters(request)
                assert refused.value.code() == code, secret
        async with registry.stub_as(registry.credentials.identity("gateway")) as stub:
            assert len((await stub.GetPasswordParameters(request)).parameters) == 1


async def test_set_collector_password_is_an_admins_only(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        await register(registry, "edge-7")
        request = registry_pb2.SetCollectorPasswordRequest(name="edge-7", password=NEW_PASSWORD, overlap_seconds=60)
        operator = await registry.token("operator-1", "operator")
        for secret in (None, operator, registry.credentials.identity("gateway")):
            async with registry.stub_as(secret) as stub:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.SetCollectorPassword(request)
                assert refused.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        assert not (await get(registry, "edge-7")).HasField("password_rotated_at")


async def test_after_an_identity_key_rotation_the_password_stays_bound_to_the_old_key_until_set_password(
    database_url: str,
) -> None:
    """ADR 0024 x 0025: the credential is bound to the key it was made for, so the Challenge
    carries that key; set-password binds the new credential to the current key."""
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        await register(registry, "edge-7", enable=True)
        session_id = secrets.token_hex(8)
        assert (await collector.authenticate(registry, session_id=session_id)).decision == ACCEPTED
        old_key = collector.public_key
        new_key = Ed25519PrivateKey.generate()
        rotation = key_rotation.build(collector.instance_uid, collector.key, new_key, HANDSHAKE_HASH)
        rotated = await registry.stub.RotateCollectorKey(
            registry_pb2.RotateCollectorKeyRequest(
                instance_uid=collector.instance_uid,
                old_public_key=old_key,
                rotation=rotation,
                handshake_hash=HANDSHAKE_HASH,
                session_id=session_id,
                gateway_id="gw-1",
                remote_address="198.51.100.7:50123",
            )
        )
        assert rotated.result.accepted, rotated.result.reason
        collector.key = new_key

        [offered] = await collector.password_parameters(registry)
        assert offered.public_key == old_key != collector.public_key
        assert (await collector.authenticate(registry)).decision == ACCEPTED

        await set_password(registry, "edge-7")
        current, previous = await collector.password_parameters(registry)
        assert (current.public_key, previous.public_key) == (collector.public_key, old_key)
        collector.password = NEW_PASSWORD
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        assert (await get(registry, "edge-7")).password_last_proved == "current"


async def test_migration_0015_converts_registered_verifiers_and_keeps_what_register_needs(database_url: str) -> None:
    """Registered at 0014 with a verifier: after 0015 a StoredKey (the verifier's hash made
    into one, no password needed) and a blank verifier; a pending collector keeps its
    verifier for `register`; a verifier that cannot convert is kept and gives no credential."""
    registered = FakeCollector("edge-old")
    pending = FakeCollector("edge-waiting")
    odd = FakeCollector("edge-odd", verifier="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 22)
    await _migrate_to(database_url, "0014")
    engine = create_engine(database_url, SCHEMA)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            for collector, state in ((registered, "enabled"), (pending, "pending"), (odd, "enabled")):
                await conn.execute(
                    sa.text(
                        "INSERT INTO collectors (instance_uid, name, zone, version, username, password_verifier, "
                        "public_key, fingerprint, state, state_reason, state_changed_by, remote_address, transport, "
                        "gateway_id, session_id, connected, first_seen, last_seen, registered_at, revision, "
                        "last_error) VALUES (:uid, :name, 'dmz', '0.9', :username, :verifier, :key, :fp, :state, "
                        "'', 'alice', '', '', '', '', false, :now, :now, :now, 0, '')"
                    ),
                    {
                        "uid": collector.instance_uid,
                        "name": collector.name,
                        "username": collector.username,
                        "verifier": collector.verifier,
                        "key": collector.public_key,
                        "fp": collector.fingerprint,
                        "state": state,
                        "now": now.replace(tzinfo=None) if is_sqlite(database_url) else now,
                    },
                )
    finally:
        await engine.dispose()

    await _migrate_to(database_url, "head")

    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT instance_uid, slot, stored_key FROM collector_passwords"))).all()
            verifiers = dict(
                (await conn.execute(sa.text("SELECT instance_uid, password_verifier FROM collectors"))).all()
            )
    finally:
        await engine.dispose()
    converted = password_proof.from_phc(registered.verifier)
    assert converted is not None
    assert [(r[0], r[1], bytes(r[2])) for r in rows] == [(registered.instance_uid, "current", converted.stored_key)]
    assert verifiers == {
        registered.instance_uid: "",
        pending.instance_uid: pending.verifier,
        odd.instance_uid: odd.verifier,
    }
    async with running_registry(database_url) as registry:
        assert (await registered.authenticate(registry)).decision == ACCEPTED
        assert (await odd.authenticate(registry)).decision == ACCEPTED  # no credential: its key alone
        shown = await get(registry, "edge-odd")
        assert not shown.password_on_record
        await register(registry, "edge-waiting")  # the pending verifier still checks the admin's password


async def _migrate_to(database_url: str, revision: str) -> None:
    engine = create_engine(database_url, SCHEMA)
    try:
        await ensure_schema(engine, SCHEMA)
    finally:
        await engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = SCHEMA
    await asyncio.to_thread(command.upgrade, cfg, revision)
