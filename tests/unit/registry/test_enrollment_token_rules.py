"""The enrollment rules: which token admits which collector, and each refusal's words (ADR 0022)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from outpost import errors
from outpost.enrollment_token import EnrollmentToken
from services.registry.domain import enrollment_tokens as rules
from services.registry.domain.enrollment_tokens import (
    Denial,
    EnrollmentTokenRecord,
    EnrollmentTokenState,
    StoredEnrollmentToken,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PRESENTED = EnrollmentToken("et_0123456789abcdef", bytes(range(32)))
RECORD = EnrollmentTokenRecord(
    token_id=PRESENTED.token_id, name="site-a", zone="lab", created_at=NOW, created_by="alice"
)


def stored(**changes: object) -> StoredEnrollmentToken:
    return StoredEnrollmentToken(replace(RECORD, **changes), PRESENTED.digest)  # type: ignore[arg-type]


def check(
    token: StoredEnrollmentToken | None,
    *,
    presented: EnrollmentToken | None = PRESENTED,
    address: str = "10.1.2.3:5000",
    zone: str = "",
    now: datetime = NOW,
) -> rules.EnrollmentDenied | None:
    return rules.check_enrollment(token, presented, remote_address=address, hello_zone=zone, now=now)


def test_a_valid_token_admits_any_address_and_the_empty_or_its_own_zone() -> None:
    assert check(stored()) is None
    assert check(stored(), zone="lab") is None
    assert check(stored(), address="[2001:db8::1]:5000") is None


@pytest.mark.parametrize(
    ("token", "presented", "denial", "phrase"),
    [
        (None, PRESENTED, Denial.UNKNOWN, "et_0123456789abcdef is not known"),
        (stored(), None, Denial.UNKNOWN, "in the hello is not known"),
        (stored(), EnrollmentToken(PRESENTED.token_id, bytes(32)), Denial.UNKNOWN, "is not known"),
        (
            stored(revoked_at=NOW, revoked_by="bob"),
            PRESENTED,
            Denial.REVOKED,
            "was revoked at 2026-12-07T12:00:00Z by bob",
        ),
        (stored(expires_at=NOW), PRESENTED, Denial.EXPIRED, "expired at 2026-12-07T12:00:00Z"),
        (stored(uses_allowed=5, uses_used=5), PRESENTED, Denial.USED_UP, "used up (used 5 of 5)"),
    ],
)
def test_each_refusal_names_its_reason(
    token: StoredEnrollmentToken | None, presented: EnrollmentToken | None, denial: Denial, phrase: str
) -> None:
    denied = check(token, presented=presented)
    assert denied is not None and denied.denial is denial
    assert phrase in denied.message


def test_an_unknown_token_tells_nothing_about_the_real_one() -> None:
    denied = check(stored(), presented=EnrollmentToken(PRESENTED.token_id, bytes(32)))
    assert denied is not None
    assert "site-a" not in denied.message and "lab" not in denied.message


def test_revoked_wins_over_expired_and_used_up() -> None:
    token = stored(revoked_at=NOW, expires_at=NOW - timedelta(days=1), uses_allowed=1, uses_used=1)
    denied = check(token)
    assert denied is not None and denied.denial is Denial.REVOKED


@pytest.mark.parametrize(
    ("cidrs", "address", "admitted"),
    [
        (("10.0.0.0/8",), "127.0.0.1:40000", False),
        (("127.0.0.0/8",), "127.0.0.1:40000", True),
        (("10.0.0.0/8", "127.0.0.0/8"), "127.0.0.1:40000", True),
        (("127.0.0.0/8",), "[::ffff:127.0.0.1]:40000", True),
        (("127.0.0.0/8",), "::ffff:127.0.0.1", True),
        (("2001:db8::/32",), "[2001:db8::5]:1", True),
        (("2001:db8::/32",), "[2001:db9::5]:1", False),
        (("10.0.0.0/8",), "", False),
        (("10.0.0.0/8",), "not-an-address", False),
    ],
)
def test_the_source_network_is_the_address_the_gateway_saw(
    cidrs: tuple[str, ...], address: str, admitted: bool
) -> None:
    denied = check(stored(cidrs=cidrs), address=address)
    if admitted:
        assert denied is None
    else:
        assert denied is not None and denied.denial is Denial.NETWORK
        assert ", ".join(cidrs) in denied.message and (address or "an unknown address") in denied.message


def test_another_zone_in_the_hello_is_refused_with_both_zones() -> None:
    denied = check(stored(), zone="prod")
    assert denied is not None and denied.denial is Denial.ZONE
    assert "zone 'lab'" in denied.message and "'prod'" in denied.message and "--zone lab" in denied.message


def test_states() -> None:
    assert RECORD.state(NOW) is EnrollmentTokenState.VALID
    assert replace(RECORD, uses_allowed=2, uses_used=1).state(NOW) is EnrollmentTokenState.VALID
    assert replace(RECORD, uses_allowed=2, uses_used=2).state(NOW) is EnrollmentTokenState.USED_UP
    assert replace(RECORD, expires_at=NOW + timedelta(seconds=1)).state(NOW) is EnrollmentTokenState.VALID
    assert replace(RECORD, expires_at=NOW).state(NOW) is EnrollmentTokenState.EXPIRED
    assert replace(RECORD, revoked_at=NOW).state(NOW) is EnrollmentTokenState.REVOKED
    assert RECORD.principal == "enrollment-token:site-a"


def test_create_bounds() -> None:
    assert rules.require_cidrs(["10.1.2.3/8", "10.0.0.0/8", " 2001:db8::1/32 "]) == ("10.0.0.0/8", "2001:db8::/32")
    for bad in (["10.0.0.0/33"], ["lab"], ["10.0.0.0/8"] * 0 + [f"10.{i}.0.0/16" for i in range(33)]):
        with pytest.raises(errors.InvalidArgument):
            rules.require_cidrs(bad)
    with pytest.raises(errors.InvalidArgument, match="needs a zone"):
        rules.require_zone("  ")
    with pytest.raises(errors.InvalidArgument):
        rules.require_uses(-1)
    with pytest.raises(errors.InvalidArgument):
        rules.require_name("-bad")
    assert rules.expiry(NOW, 0) is None
    assert rules.expiry(NOW, 60) == NOW + timedelta(seconds=60)
