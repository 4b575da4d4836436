"""The collector's reconnect policy (`plan_reconnect`) on top of the shared backoff."""

from __future__ import annotations

import random

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.session.collector import Closed
from services.collector.connection import ConnectionOutcome
from services.collector.domain.server_url import parse_server_url
from services.collector.supervisor import plan_reconnect

R = agent_pb2.DisconnectReason
SERVER = parse_server_url("grpc://gw-1")


def seeded(initial: float = 0.5, maximum: float = 30.0, seed: int = 7) -> Backoff:
    return Backoff(initial, maximum, random.Random(seed))


def outcome(
    reason: int,
    *,
    accepted: bool = False,
    retry: bool = True,
    retry_after: float = 0.0,
    by_server: bool = True,
) -> ConnectionOutcome:
    return ConnectionOutcome(SERVER, accepted, Closed(reason, "", retry, retry_after, by_server))  # type: ignore[arg-type]


def test_a_connection_that_could_not_open_backs_off_and_counts() -> None:
    backoff = seeded()
    plan = plan_reconnect(None, backoff)
    assert 0.0 <= plan.delay <= 0.5 and not plan.needs_operator
    assert backoff.attempt == 1


def test_an_accepted_session_resets_the_backoff_before_the_next_delay() -> None:
    backoff = seeded()
    backoff.attempt = 8
    plan = plan_reconnect(outcome(R.DISCONNECT_REASON_SHUTTING_DOWN, accepted=True), backoff)
    assert plan.delay <= 0.5
    assert backoff.attempt == 1


def test_a_lost_connection_that_was_never_accepted_keeps_growing() -> None:
    backoff = seeded()
    backoff.attempt = 3
    plan_reconnect(outcome(R.DISCONNECT_REASON_UNAVAILABLE, by_server=False), backoff)
    assert backoff.attempt == 4


def test_the_server_retry_hint_is_a_floor() -> None:
    plan = plan_reconnect(outcome(R.DISCONNECT_REASON_SHUTTING_DOWN, accepted=True, retry_after=7), seeded())
    assert plan.delay == 7.0


@pytest.mark.parametrize(
    "reason",
    [
        R.DISCONNECT_REASON_UNSUPPORTED_VERSION,
        R.DISCONNECT_REASON_AUTHENTICATION_FAILED,
        R.DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE,
        R.DISCONNECT_REASON_NAME_CONFLICT,
        R.DISCONNECT_REASON_REMOVED,
    ],
)
def test_refusals_an_operator_must_fix_wait_the_maximum_and_say_so(reason: int) -> None:
    for by_server in (True, False):
        plan = plan_reconnect(outcome(reason, by_server=by_server), seeded(maximum=12.0))
        assert plan.delay == 12.0 and plan.needs_operator


def test_any_server_refusal_without_retry_waits_the_maximum() -> None:
    plan = plan_reconnect(outcome(R.DISCONNECT_REASON_INTERNAL_ERROR, retry=False), seeded(maximum=12.0))
    assert plan.delay == 12.0 and plan.needs_operator
