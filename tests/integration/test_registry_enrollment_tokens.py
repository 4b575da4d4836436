"""Zone enrollment tokens in the registry (in-process, SQLite and PostgreSQL; ADR 0022).

The registry is served on a real port. Handshakes are built as a gateway forwards them
(`FakeCollector`, signed over the transcript that covers the token); the oracle is what
the registry answers, its collectors, its audit trail and its tables.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import sqlalchemy as sa

from outpost.audit.v1 import audit_pb2, audit_pb2_grpc
from outpost.enrollment_token import EnrollmentToken
from outpost.registry.v1 import registry_pb2
from services.registry.domain.pending_limits import PendingLimits
from services.registry.store import enrollment_tokens as token_queries
from services.registry.store.models import CollectorRow, EnrollmentTokenRow
from tests.integration.test_registry_support import (
    ACCEPTED,
    CS,
    REFUSED,
    FakeCollector,
    ManualClock,
    R,
    RunningRegistry,
    announce,
    get,
    register,
    running_registry,
    watching,
)

VALID = registry_pb2.ENROLLMENT_TOKEN_STATE_VALID
EXPIRED = registry_pb2.ENROLLMENT_TOKEN_STATE_EXPIRED
USED_UP = registry_pb2.ENROLLMENT_TOKEN_STATE_USED_UP
REVOKED = registry_pb2.ENROLLMENT_TOKEN_STATE_REVOKED
INSIDE = "10.1.2.3:50123"


async def create(
    registry: RunningRegistry,
    name: str,
    zone: str = "lab",
    *,
    uses: int = 0,
    expires_in_seconds: int = 0,
    cidrs: tuple[str, ...] = (),
) -> str:
    """A new token's text."""
    reply = await registry.stub.CreateEnrollmentToken(
        registry_pb2.CreateEnrollmentTokenRequest(
            name=name, zone=zone, uses=uses, expires_in_seconds=expires_in_seconds, cidrs=list(cidrs)
        )
    )
    return str(reply.enrollment_token_text)


async def tokens(
    registry: RunningRegistry, *, include_revoked: bool = True
) -> dict[str, registry_pb2.EnrollmentTokenInfo]:
    reply = await registry.stub.ListEnrollmentTokens(
        registry_pb2.ListEnrollmentTokensRequest(include_revoked=include_revoked)
    )
    return {t.name: t for t in reply.enrollment_tokens}


async def collector_names(registry: RunningRegistry) -> list[str]:
    reply = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
    return [c.name for c in reply.collectors]


async def enroll(
    registry: RunningRegistry, name: str, token: str, *, zone: str = "", remote_address: str = INSIDE
) -> tuple[FakeCollector, registry_pb2.AuthenticateCollectorResponse]:
    collector = FakeCollector(name, zone=zone, enrollment_token=token)
    return collector, await collector.authenticate(registry, remote_address=remote_address)


def assert_refused(response: registry_pb2.AuthenticateCollectorResponse, *phrases: str) -> None:
    assert response.decision == REFUSED
    assert response.refusal == R.DISCONNECT_REASON_ENROLLMENT_REFUSED, response.message
    for phrase in phrases:
        assert phrase in response.message, response.message
    assert response.retry_after_seconds >= 60


# --- the admin side ---------------------------------------------------------------------------
async def test_create_shows_the_token_once_and_stores_only_its_digest(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "site-a", "lab", uses=5, expires_in_seconds=3600, cidrs=("10.9.8.7/8",))
        token = EnrollmentToken.parse(text)

        info = (await tokens(registry))["site-a"]
        assert (info.token_id, info.zone, info.uses_allowed, info.uses_used) == (token.token_id, "lab", 5, 0)
        assert list(info.cidrs) == ["10.0.0.0/8"]
        assert info.state == VALID and info.created_by
        assert info.HasField("expires_at")
        assert text not in str(info)
        async with registry.server.store.read() as tx:
            row = await tx.session.scalar(sa.select(EnrollmentTokenRow))
        assert row is not None
        assert bytes(row.secret_digest) == hashlib.sha256(token.secret).digest()
        assert token.secret not in repr(row.__dict__).encode()


async def test_create_refuses_no_zone_a_bad_network_and_a_live_name_twice(database_url: str) -> None:
    import grpc

    async with running_registry(database_url) as registry:
        for request, phrase in (
            (registry_pb2.CreateEnrollmentTokenRequest(name="a", zone=""), "needs a zone"),
            (registry_pb2.CreateEnrollmentTokenRequest(name="a", zone="lab", cidrs=["10.0.0.0/33"]), "not an IPv4"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await registry.stub.CreateEnrollmentToken(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert phrase in str(refused.value.details())
        await create(registry, "site-a")
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await create(registry, "site-a")
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
        await registry.stub.RevokeEnrollmentToken(registry_pb2.RevokeEnrollmentTokenRequest(name="site-a"))
        await create(registry, "site-a")  # a revoked token's name is free again
        assert len((await tokens(registry)).keys()) == 1  # by name: the live one
        live = await tokens(registry, include_revoked=False)
        assert live["site-a"].state == VALID


# --- enrolling ----------------------------------------------------------------------------------
async def test_a_valid_token_enrolls_the_collector_enabled_in_its_zone_without_an_admin(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "lab-rollout", "lab", uses=3)
        async with watching(registry) as watch:
            _, response = await enroll(registry, "edge-1", text)

            assert response.decision == ACCEPTED, response.message
            assert (response.state, response.zone, response.name) == (CS.COLLECTOR_STATE_ENABLED, "lab", "edge-1")
            assert response.state_changed_by == "enrollment-token:lab-rollout"
            event = await watch.next_change()
            assert (event.name, event.state, event.zone) == ("edge-1", CS.COLLECTOR_STATE_ENABLED, "lab")

        collector = await get(registry, "edge-1")
        assert collector.enrolled_by == "enrollment-token:lab-rollout"
        assert collector.state_changed_by == "enrollment-token:lab-rollout"
        assert collector.HasField("registered_at")
        assert (await tokens(registry))["lab-rollout"].uses_used == 1

        audit = audit_pb2_grpc.AuditServiceStub(registry.channel)
        events = (await audit.ListAuditEvents(audit_pb2.ListAuditEventsRequest(limit=100))).events
        enrolled = [e for e in events if e.method == "EnrollCollector"]
        assert [(e.principal, e.target, e.outcome) for e in enrolled] == [
            ("enrollment-token:lab-rollout", "edge-1", "ok")
        ]
        assert "into zone 'lab'" in enrolled[0].detail and "use 1 of 3" in enrolled[0].detail


async def test_the_enrolled_collector_reconnects_with_its_token_or_without_and_uses_no_more(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "lab-rollout", "lab", uses=1)
        collector, _ = await enroll(registry, "edge-1", text)

        again = await collector.authenticate(registry, remote_address=INSIDE)  # token still in its hello
        collector.enrollment_token = ""
        without = await collector.authenticate(registry, remote_address=INSIDE)

        for response in (again, without):
            assert response.decision == ACCEPTED, response.message
            assert (response.state, response.zone) == (CS.COLLECTOR_STATE_ENABLED, "lab")
        assert (await tokens(registry))["lab-rollout"].uses_used == 1


async def test_the_hello_zone_must_be_the_tokens_or_empty(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "lab-rollout", "lab")

        _, same = await enroll(registry, "edge-1", text, zone="lab")
        _, other = await enroll(registry, "edge-2", text, zone="prod")

        assert same.decision == ACCEPTED and same.zone == "lab"
        assert_refused(other, "enrolls into zone 'lab'", "says zone 'prod'", "--zone lab")
        assert await collector_names(registry) == ["edge-1"]
        assert (await tokens(registry))["lab-rollout"].uses_used == 1


async def test_a_used_up_token_is_refused_with_its_count_and_leaves_nothing(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "two", "lab", uses=2)
        for name in ("edge-1", "edge-2"):
            assert (await enroll(registry, name, text))[1].decision == ACCEPTED

        _, response = await enroll(registry, "edge-3", text)

        assert_refused(response, "'two' is used up (used 2 of 2)")
        assert await collector_names(registry) == ["edge-1", "edge-2"]
        assert (await tokens(registry))["two"].state == USED_UP


async def test_an_expired_token_is_refused_saying_when(database_url: str) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        text = await create(registry, "brief", "lab", expires_in_seconds=60)
        clock.advance(61)

        _, response = await enroll(registry, "edge-1", text)

        assert_refused(response, "'brief' expired at")
        assert await collector_names(registry) == []
        assert (await tokens(registry))["brief"].state == EXPIRED


@pytest.mark.parametrize(
    ("cidr", "remote_address", "admitted"),
    [
        ("10.0.0.0/8", "127.0.0.1:40000", False),
        ("127.0.0.0/8", "127.0.0.1:40000", True),
        ("127.0.0.0/8", "[::ffff:127.0.0.1]:40000", True),
        ("2001:db8::/32", "[2001:db8::7]:40000", True),
        ("2001:db8::/32", "127.0.0.1:40000", False),
    ],
)
async def test_a_token_admits_only_its_source_networks(
    database_url: str, cidr: str, remote_address: str, admitted: bool
) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "site-net", "lab", cidrs=(cidr,))

        _, response = await enroll(registry, "edge-1", text, remote_address=remote_address)

        if admitted:
            assert response.decision == ACCEPTED, response.message
        else:
            assert_refused(response, f"admits collectors from {cidr} only", f"connected from {remote_address}")
            assert await collector_names(registry) == []


async def test_a_revoked_token_is_refused_saying_when_and_by_whom(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "gone", "lab")
        await registry.stub.RevokeEnrollmentToken(registry_pb2.RevokeEnrollmentTokenRequest(name="gone"))

        _, response = await enroll(registry, "edge-1", text)

        assert_refused(response, "'gone' was revoked at", "by alice")
        assert await collector_names(registry) == []
        assert (await tokens(registry))["gone"].state == REVOKED


async def test_an_unknown_token_and_a_wrong_secret_get_the_same_refusal(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        real = EnrollmentToken.parse(await create(registry, "site-a", "lab"))
        guessed = EnrollmentToken(real.token_id, bytes(32)).encode()
        invented = EnrollmentToken("et_0000000000000000", bytes(32)).encode()

        responses = [(await enroll(registry, f"edge-{i}", text))[1] for i, text in enumerate((guessed, invented, "x"))]

        for response in responses:
            assert_refused(response, "is not known to this server")
            assert "site-a" not in response.message and "lab" not in response.message
        assert await collector_names(registry) == []
        assert (await tokens(registry))["site-a"].uses_used == 0


async def test_each_refusal_has_its_own_message(database_url: str) -> None:
    """The issue's list: used up, expired, wrong network, revoked — distinct reasons."""
    clock = ManualClock()
    async with running_registry(database_url, clock=clock) as registry:
        used = await create(registry, "used", uses=1)
        await enroll(registry, "first", used)
        expiring = await create(registry, "expiring", expires_in_seconds=60)
        network = await create(registry, "network", cidrs=("10.0.0.0/8",))
        revoked = await create(registry, "revoked")
        await registry.stub.RevokeEnrollmentToken(registry_pb2.RevokeEnrollmentTokenRequest(name="revoked"))
        clock.advance(61)

        messages = set()
        for i, (text, address) in enumerate(
            ((used, INSIDE), (expiring, INSIDE), (network, "127.0.0.1:4000"), (revoked, INSIDE))
        ):
            _, response = await enroll(registry, f"edge-{i}", text, remote_address=address)
            assert response.refusal == R.DISCONNECT_REASON_ENROLLMENT_REFUSED
            messages.add(response.message.split(":")[0])
        assert len(messages) == 4


async def test_a_refused_enrollment_is_evidence_for_explain(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "gone", "lab")
        await registry.stub.RevokeEnrollmentToken(registry_pb2.RevokeEnrollmentTokenRequest(name="gone"))
        await enroll(registry, "edge-1", text)

        response = await registry.stub.ExplainCollector(registry_pb2.ExplainCollectorRequest(name="edge-1"))

        found = [f for f in response.findings if f.code == "enrollment_refused"]
        assert len(found) == 1, [f.code for f in response.findings]
        assert "'gone' was revoked" in found[0].message
        assert "enrollment-tokens" in found[0].advice


# --- who is enrolled, and who is not --------------------------------------------------------------
async def test_a_registered_collector_ignores_its_token_and_uses_none(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-1", zone="dmz")
        await register(registry, "edge-1")
        text = await create(registry, "lab-rollout", "lab", uses=1)
        collector.enrollment_token = text

        response = await collector.authenticate(registry, remote_address=INSIDE)

        assert response.decision == ACCEPTED and response.zone == "dmz"
        assert (await get(registry, "edge-1")).enrolled_by == ""
        assert (await tokens(registry))["lab-rollout"].uses_used == 0


async def test_a_pending_collector_that_comes_back_with_a_token_is_enrolled(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-1", zone="")
        text = await create(registry, "lab-rollout", "lab")
        collector.enrollment_token = text

        response = await collector.authenticate(registry, remote_address=INSIDE)

        assert response.decision == ACCEPTED, response.message
        assert (response.state, response.zone) == (CS.COLLECTOR_STATE_ENABLED, "lab")
        shown = await get(registry, "edge-1")
        assert (shown.zone, shown.enrolled_by) == ("lab", "enrollment-token:lab-rollout")


async def test_a_pending_collector_refused_its_token_stays_pending_as_it_was(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-1", zone="")
        collector.enrollment_token = await create(registry, "gone", "lab")
        await registry.stub.RevokeEnrollmentToken(registry_pb2.RevokeEnrollmentTokenRequest(name="gone"))

        response = await collector.authenticate(registry, remote_address=INSIDE)

        assert_refused(response, "'gone' was revoked")
        shown = await get(registry, "edge-1")
        assert (shown.state, shown.zone, shown.enrolled_by) == (CS.COLLECTOR_STATE_PENDING, "", "")


async def test_a_name_held_by_another_key_is_a_name_conflict_and_uses_no_token(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-1")
        text = await create(registry, "lab-rollout", "lab")

        _, response = await enroll(registry, "edge-1", text)

        assert response.decision == REFUSED and response.refusal == R.DISCONNECT_REASON_NAME_CONFLICT
        assert (await tokens(registry))["lab-rollout"].uses_used == 0


async def test_a_token_hello_is_not_held_to_the_pending_bound(database_url: str) -> None:
    async with running_registry(database_url, pending_limits=PendingLimits(max_pending=1)) as registry:
        await announce(registry, "waiting")
        text = await create(registry, "lab-rollout", "lab")

        _, response = await enroll(registry, "edge-1", text)

        assert response.decision == ACCEPTED, response.message


async def blocked_behind_a_row_lock(registry: RunningRegistry) -> None:
    """On PostgreSQL, wait until a transaction waits for a lock (the second UPDATE on the row).

    On SQLite the registry serialises writers in-process, so the second transaction waits
    before it even starts: nothing to observe in the database.
    """
    store = registry.server.store
    if store.engine.dialect.name == "sqlite":
        await asyncio.sleep(0)
        return
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(10):
        while True:
            async with store.engine.connect() as conn:
                if (await conn.scalar(query)) == 1:
                    return
            await asyncio.sleep(0.02)


# --- the last use, raced ------------------------------------------------------------------------
async def test_collectors_racing_for_the_last_uses_never_overdraw(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        text = await create(registry, "two", "lab", uses=2)

        responses = await asyncio.gather(*(enroll(registry, f"edge-{i}", text) for i in range(6)))

        accepted = [c.name for c, r in responses if r.decision == ACCEPTED]
        assert len(accepted) == 2
        assert sorted(await collector_names(registry)) == sorted(accepted)
        assert (await tokens(registry))["two"].uses_used == 2


async def test_two_transactions_taking_the_last_use_at_once_cannot_both_win(database_url: str) -> None:
    """The conditional UPDATE itself, without the registry's event lock: the database decides."""
    async with running_registry(database_url) as registry:
        token_id = EnrollmentToken.parse(await create(registry, "last", "lab", uses=1)).token_id
        store = registry.server.store
        now = registry.clock()
        first_took = asyncio.Event()
        release_first = asyncio.Event()

        async def first() -> bool:
            async with store.write(exclusive=False) as tx:
                took = await token_queries.consume(tx.session, token_id, now)
                first_took.set()
                await release_first.wait()
                return took

        async def second() -> bool:
            await first_took.wait()
            async with store.write(exclusive=False) as tx:
                return await token_queries.consume(tx.session, token_id, now)

        first_task = asyncio.create_task(first())
        second_task = asyncio.create_task(second())
        await first_took.wait()
        await blocked_behind_a_row_lock(registry)
        assert not second_task.done()
        release_first.set()

        assert (await first_task, await second_task) == (True, False)
        async with store.read() as tx:
            row = await tx.session.get(EnrollmentTokenRow, token_id, populate_existing=True)
            assert row is not None and row.uses_used == 1
            assert await tx.session.scalar(sa.select(sa.func.count()).select_from(CollectorRow)) == 0
