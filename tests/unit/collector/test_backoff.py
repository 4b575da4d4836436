from __future__ import annotations

import random

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session.collector import Closed
from services.collector.connection import ConnectionOutcome
from services.collector.domain.backoff import Backoff
from services.collector.domain.server_url import parse_server_url
from services.collector.supervisor import plan_reconnect

R = agent_pb2.DisconnectReason
SERVER = parse_server_url("grpc://gw-1")


def seeded(initial: float = 0.5, maximum: float = 30.0, seed: int = 7) -> Backoff:
    return Backoff(initial, maximum, random.Random(seed))


def test_each_delay_is_full_jitter_below_a_doubling_ceiling() -> None:
    backoff = seeded()
    ceilings = [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    for ceiling in ceilings:
        assert backoff.ceiling() == ceiling
        assert 0.0 <= backoff.next_delay() <= ceiling


def test_delays_are_spread_over_the_window_not_pinned_to_its_top() -> None:
    backoff = seeded(seed=1)
    backoff.attempt = 10  # capped at 30 s
    delays = [backoff.next_delay() for _ in range(200)]
    assert max(delays) <= 30.0
    assert min(delays) < 3.0 and max(delays) > 27.0


def test_the_cap_holds_after_very_many_failures_without_overflow() -> None:
    backoff = seeded(maximum=30.0)
    for _ in range(5000):
        assert backoff.next_delay() <= 30.0
    assert backoff.ceiling() == 30.0


def test_reset_starts_again_from_the_initial_window() -> None:
    backoff = seeded()
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.ceiling() == 0.5
    assert backoff.next_delay() <= 0.5


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = seeded(seed=3), seeded(seed=3)
    assert [first.next_delay() for _ in range(10)] == [second.next_delay() for _ in range(10)]


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 30.0), (-1.0, 30.0), (5.0, 1.0)])
def test_inconsistent_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(initial, maximum)


# --- the reconnect policy on top of it -------------------------------------------------
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
