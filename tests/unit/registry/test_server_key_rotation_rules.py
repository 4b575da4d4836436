"""The server key's state follows its times (ADR 0024): announce, activate, retire, forget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outpost import errors
from services.registry.domain.server_keys import (
    ServerKey,
    ServerKeyState,
    effective,
    new_server_key,
    plan_rotation,
)

T0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
C, N, R = ServerKeyState.CURRENT, ServerKeyState.NEXT, ServerKeyState.RETIRED


def states(keys: list[ServerKey], at: datetime) -> list[tuple[str, ServerKeyState]]:
    return [(k.fingerprint, k.state) for k in effective(keys, at)]


def rotated(activate_in: int = 60, retire_after: int = 600) -> tuple[ServerKey, ServerKey]:
    first = new_server_key(T0)
    plan = plan_rotation([first], T0, activate_in_seconds=activate_in, retire_after_seconds=retire_after)
    old = ServerKey(
        first.public_key, first.private_key, first.state, first.created_at, first.activated_at, plan.replaced_retires_at
    )
    return old, plan.next_key


def test_a_rotation_announces_then_activates_then_retires_then_forgets_the_old_key() -> None:
    old, new = rotated(activate_in=60, retire_after=600)
    keys = [old, new]
    assert states(keys, T0) == [(old.fingerprint, C), (new.fingerprint, N)]
    assert states(keys, T0 + timedelta(seconds=59)) == [(old.fingerprint, C), (new.fingerprint, N)]
    assert states(keys, T0 + timedelta(seconds=60)) == [(new.fingerprint, C), (old.fingerprint, R)]
    assert states(keys, T0 + timedelta(seconds=659)) == [(new.fingerprint, C), (old.fingerprint, R)]
    assert states(keys, T0 + timedelta(seconds=660)) == [(new.fingerprint, C)]


def test_activate_in_zero_makes_the_new_key_current_at_once() -> None:
    old, new = rotated(activate_in=0, retire_after=30)
    assert states([old, new], T0) == [(new.fingerprint, C), (old.fingerprint, R)]


def test_one_rotation_at_a_time() -> None:
    old, new = rotated()
    with pytest.raises(errors.FailedPrecondition, match="already announced"):
        plan_rotation([old, new], T0, activate_in_seconds=60, retire_after_seconds=60)
    # Once the announced key is current, the next rotation may start.
    plan = plan_rotation([old, new], T0 + timedelta(seconds=61), activate_in_seconds=60, retire_after_seconds=60)
    assert plan.replaced.public_key == new.public_key


@pytest.mark.parametrize(("activate_in", "retire_after"), [(-1, 1), (0, 0), (0, -1), (10**12, 1), (0, 10**12)])
def test_windows_outside_zero_to_a_year_are_refused(activate_in: int, retire_after: int) -> None:
    with pytest.raises(errors.InvalidArgument):
        plan_rotation([new_server_key(T0)], T0, activate_in_seconds=activate_in, retire_after_seconds=retire_after)
