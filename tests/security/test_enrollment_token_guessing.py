"""Enrollment tokens cannot be guessed at any speed: a refused token is a failed handshake (ADR 0022).

The gateway's real session loop runs in-process with the real registry (SQLite and
PostgreSQL), as in `test_nat_failed_handshakes`; every connection comes from 127.0.0.1.
An attacker who tries tokens is refused ENROLLMENT_REFUSED, stored nowhere, and once the
address's (or the key's) failed-handshake ceiling is reached, refused before the registry
is even asked.
"""

from __future__ import annotations

from outpost.enrollment_token import EnrollmentToken
from outpost.registry.v1 import registry_pb2
from outpost.session.collector import Accepted
from services.gateway.sessions.admission import Admission, FailureLimits
from tests.integration.test_registry_support import FakeCollector, running_registry
from tests.security.test_nat_failed_handshakes import MAX_PER_KEY, Clock, R, connect, gateway, refused


def guess(i: int) -> str:
    return EnrollmentToken("et_00000000deadbeef", i.to_bytes(32, "big")).encode()


async def test_guessing_tokens_with_one_key_is_blocked_per_key(database_url: str) -> None:
    clock = Clock()
    async with running_registry(database_url) as registry, gateway(registry, clock) as ctx:
        attacker = FakeCollector("edge-guess", zone="")
        for i in range(MAX_PER_KEY):
            attacker.enrollment_token = guess(i)
            closed = refused(await connect(ctx, attacker), R.DISCONNECT_REASON_ENROLLMENT_REFUSED)
            assert "is not known to this server" in closed.message

        attacker.enrollment_token = guess(MAX_PER_KEY)
        refused(await connect(ctx, attacker), R.DISCONNECT_REASON_RATE_LIMITED)

        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []  # nothing stored, not even pending


async def test_guessing_tokens_with_fresh_keys_reaches_the_address_ceiling(database_url: str) -> None:
    clock = Clock()
    async with running_registry(database_url) as registry, gateway(registry, clock) as ctx:
        ctx.admission = Admission(limits=FailureLimits(max_per_key=100, max_per_address=4, window=60), clock=clock)
        for i in range(4):
            fresh = FakeCollector(f"edge-guess-{i}", zone="", enrollment_token=guess(i))
            refused(await connect(ctx, fresh), R.DISCONNECT_REASON_ENROLLMENT_REFUSED)

        text = (
            await registry.stub.CreateEnrollmentToken(
                registry_pb2.CreateEnrollmentTokenRequest(name="real", zone="lab")
            )
        ).enrollment_token_text
        limited = refused(
            await connect(ctx, FakeCollector("edge-real", zone="", enrollment_token=text)),
            R.DISCONNECT_REASON_RATE_LIMITED,
        )
        assert limited.retry_after == 60
        clock.now += 60
        closed = await connect(ctx, FakeCollector("edge-real", zone="", enrollment_token=text))
        assert isinstance(closed, Accepted), closed  # the window is over: enrolled
