"""Access-key rules: state at a time, names, zones, expiry bounds; server key generation and order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outpost import errors
from services.registry.domain import access_keys as rules
from services.registry.domain import server_keys
from services.registry.domain.access_keys import AccessKeyEvent, AccessKeyEventKind, AccessKeyRecord, AccessKeyState
from services.registry.domain.server_keys import ServerKeyState

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def record(**fields: object) -> AccessKeyRecord:
    base: dict[str, object] = {"key_id": "ak_1", "name": "site", "created_at": NOW, "created_by": "alice"}
    return AccessKeyRecord(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "at", "state"),
    [
        ({}, NOW + timedelta(days=9999), AccessKeyState.VALID),
        ({"expires_at": NOW + timedelta(hours=1)}, NOW + timedelta(minutes=59), AccessKeyState.VALID),
        ({"expires_at": NOW + timedelta(hours=1)}, NOW + timedelta(hours=1), AccessKeyState.EXPIRED),
        ({"revoked_at": NOW}, NOW, AccessKeyState.REVOKED),
        ({"revoked_at": NOW, "expires_at": NOW - timedelta(days=1)}, NOW, AccessKeyState.REVOKED),
    ],
)
def test_a_key_is_valid_until_it_expires_or_is_revoked(fields: dict[str, object], at: datetime, state: str) -> None:
    assert record(**fields).state(at) is state


@pytest.mark.parametrize("name", ["", " ", "has space", "-dash-first", "x" * 65, "ünïcode", "a/b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="access key name"):
        rules.require_name(name)


def test_good_names_are_trimmed() -> None:
    assert rules.require_name("  site-a.lab@eu_1 ") == "site-a.lab@eu_1"


def test_an_empty_zone_means_any_and_a_long_or_unprintable_one_is_refused() -> None:
    assert rules.require_zone("  ") is None
    assert rules.require_zone(" dmz ") == "dmz"
    for zone in ("x" * 257, "bad\x00zone", "tab\tzone"):
        with pytest.raises(errors.InvalidArgument):
            rules.require_zone(zone)


def test_expiry_is_bounded_like_admin_tokens() -> None:
    assert rules.expiry(NOW, 0) is None
    assert rules.expiry(NOW, 60) == NOW + timedelta(seconds=60)
    with pytest.raises(errors.InvalidArgument):
        rules.expiry(NOW, 3661 * 86_400)


def test_reprs_never_show_a_secret() -> None:
    event = AccessKeyEvent(revision=3, kind=AccessKeyEventKind.CHANGED, key_id="ak_1", psk=b"S" * 32)
    assert "SSSS" not in repr(event) and "psk" not in repr(event)
    key = server_keys.new_server_key(NOW)
    assert key.private_key.hex() not in repr(key) and str(key.private_key) not in repr(key)


def test_a_new_server_key_is_a_current_x25519_pair() -> None:
    key = server_keys.new_server_key(NOW)
    assert (len(key.public_key), len(key.private_key), key.state) == (32, 32, ServerKeyState.CURRENT)
    assert server_keys.public_of(key.private_key) == key.public_key
    assert key.fingerprint.startswith("SHA256:")
    assert server_keys.new_server_key(NOW).public_key != key.public_key


def test_gateways_get_the_current_key_first_then_next_then_the_newest_retired() -> None:
    from dataclasses import replace

    base = server_keys.new_server_key(NOW)
    old = replace(base, state=ServerKeyState.RETIRED, activated_at=NOW - timedelta(days=60))
    older = replace(base, state=ServerKeyState.RETIRED, activated_at=NOW - timedelta(days=90))
    upcoming = replace(base, state=ServerKeyState.NEXT, activated_at=None)
    ordered = server_keys.ordered([older, upcoming, old, base])
    assert ordered == [base, upcoming, old, older]


def test_the_overlap_ends_at_now_plus_overlap_never_after_the_keys_own_expiry() -> None:
    assert rules.overlap_end(NOW, 600, None) == NOW + timedelta(seconds=600)
    assert rules.overlap_end(NOW, 600, NOW + timedelta(seconds=60)) == NOW + timedelta(seconds=60)
    for bad in (0, -1, int(rules.MAX_OVERLAP.total_seconds()) + 1):
        with pytest.raises(errors.InvalidArgument, match="overlap"):
            rules.overlap_end(NOW, bad, None)


def test_only_a_live_unexpired_key_can_be_rotated() -> None:
    live = record()
    assert rules.require_rotatable("site", live, live, NOW) is live
    with pytest.raises(errors.NotFound, match="no access key named 'site'"):
        rules.require_rotatable("site", None, None, NOW)
    with pytest.raises(errors.FailedPrecondition, match="is revoked"):
        rules.require_rotatable("site", None, record(revoked_at=NOW), NOW)
    stale = record(expires_at=NOW)
    with pytest.raises(errors.FailedPrecondition, match="has expired"):
        rules.require_rotatable("site", stale, stale, NOW)
