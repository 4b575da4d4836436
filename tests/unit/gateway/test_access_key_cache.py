"""The gateway's AccessKeyCache and ServerKeys: what a handshake is answered from memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outpost import errors
from outpost.session.handshake import fingerprint
from services.gateway.access_keys import AccessKeyCache, Announcement, ServerKeys
from services.gateway.peers.registry_client import AccessKeyChange, ServerKeyPair

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PSK = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def change(revision: int, key_id: str = "ak_1", **fields: object) -> AccessKeyChange:
    base: dict[str, object] = {
        "key_id": key_id,
        "name": "site",
        "zone": None,
        "psk": PSK,
        "expires_at": None,
        "revoked": False,
    }
    return AccessKeyChange(revision=revision, **{**base, **fields})  # type: ignore[arg-type]


def test_an_unknown_key_has_no_grant_and_a_known_one_has_its_psk_and_zone() -> None:
    cache = AccessKeyCache(Clock())
    assert cache.grant("ak_1") is None
    cache.apply(change(1, zone="dmz"))
    grant = cache.grant("ak_1")
    assert grant is not None and (grant.key_id, grant.name, grant.psk, grant.zone) == ("ak_1", "site", PSK, "dmz")
    assert PSK.hex() not in repr(grant)


def test_expiry_is_checked_at_call_time_without_any_event() -> None:
    clock = Clock()
    cache = AccessKeyCache(clock)
    cache.apply(change(1, expires_at=NOW + timedelta(seconds=30)))
    assert cache.grant("ak_1") is not None and cache.valid_count() == 1
    clock.now = NOW + timedelta(seconds=30)
    assert cache.grant("ak_1") is None and cache.valid_count() == 0


def test_a_revocation_removes_the_grant_and_an_older_event_cannot_bring_it_back() -> None:
    cache = AccessKeyCache(Clock())
    cache.apply(change(1))
    cache.apply(change(5, revoked=True, psk=b""))
    assert cache.grant("ak_1") is None
    cache.apply(change(4))  # was in flight when the revocation was read
    assert cache.grant("ak_1") is None
    assert cache.valid_count() == 0


def test_a_resync_replaces_everything_so_a_key_gone_from_the_registry_is_gone_here() -> None:
    cache = AccessKeyCache(Clock())
    cache.apply(change(7, "ak_gone"))
    cache.apply(change(8, "ak_kept"))
    cache.replace([change(3, "ak_kept"), change(4, "ak_new")])  # a restored registry: lower revisions
    assert cache.grant("ak_gone") is None
    assert cache.grant("ak_kept") is not None and cache.grant("ak_new") is not None
    cache.apply(change(5, "ak_new", revoked=True, psk=b""))
    assert cache.grant("ak_new") is None


@pytest.mark.parametrize("psk", [b"", b"short", bytes(33)])
def test_a_malformed_psk_grants_nothing(psk: bytes) -> None:
    cache = AccessKeyCache(Clock())
    cache.apply(change(1, psk=psk))
    assert cache.grant("ak_1") is None


def pair(
    seed: int, *, current: bool, activated_at: datetime | None = None, retires_at: datetime | None = None
) -> ServerKeyPair:
    return ServerKeyPair(
        private_key=bytes([seed]) * 32,
        public_key=bytes([seed + 1]) * 32,
        current=current,
        activated_at=activated_at,
        retires_at=retires_at,
    )


def test_server_keys_refuse_use_until_loaded_then_put_the_current_key_first() -> None:
    keys = ServerKeys()
    with pytest.raises(errors.Unavailable):
        keys.public_key()
    later = datetime.now(UTC) + timedelta(hours=1)
    keys.load([pair(1, current=False, activated_at=later), pair(3, current=True)])
    assert keys.public_key() == bytes([4]) * 32
    assert keys.private_keys() == [bytes([3]) * 32, bytes([1]) * 32]
    assert keys.fingerprint() == fingerprint(bytes([4]) * 32)
    assert str(bytes([3]) * 32) not in repr(pair(3, current=True))


@pytest.mark.parametrize(
    "pairs",
    [[], [pair(1, current=False)], [pair(1, current=True), pair(3, current=True)]],
)
def test_server_keys_without_exactly_one_current_key_are_refused(pairs: list[ServerKeyPair]) -> None:
    keys = ServerKeys()
    with pytest.raises(errors.Unavailable):
        keys.load(pairs)
    assert not keys.loaded


def test_a_malformed_server_key_is_refused() -> None:
    with pytest.raises(errors.Unavailable):
        ServerKeys().load([ServerKeyPair(private_key=b"x", public_key=bytes(32), current=True)])


def test_the_gateway_switches_to_the_announced_key_at_its_activation_and_keeps_the_old_one_for_the_window() -> None:
    clock = Clock()
    start = clock.now
    keys = ServerKeys(clock)
    activation = start + timedelta(seconds=60)
    old = pair(1, current=True, activated_at=start - timedelta(days=1), retires_at=activation + timedelta(seconds=600))
    new = pair(3, current=False, activated_at=activation)
    assert keys.load([old, new])
    assert not keys.load([old, new])  # the same keys again: nothing to tell the sessions
    assert (keys.public_key(), keys.private_keys()) == (old.public_key, [old.private_key, new.private_key])
    assert keys.announcement() == Announcement(new.public_key, activation)
    clock.now = activation
    assert (keys.public_key(), keys.private_keys()) == (new.public_key, [new.private_key, old.private_key])
    clock.now = activation + timedelta(seconds=600)
    assert keys.private_keys() == [new.private_key]
    # A gateway that never heard of the new key keeps proving the one it has after the window.
    stale = ServerKeys(clock)
    stale.load([old])
    assert stale.private_keys() == [old.private_key]


def test_a_rotation_names_the_successor_and_a_chain_leads_to_the_newest_valid_key() -> None:
    clock = Clock()
    cache = AccessKeyCache(clock)
    assert cache.apply(change(1, "ak_old")) is False
    assert cache.successor("ak_old") is None
    assert cache.apply(change(2, "ak_new", psk=bytes(32))) is False
    overlap_end = NOW + timedelta(seconds=60)
    assert cache.apply(change(3, "ak_old", replaced_by="ak_new", expires_at=overlap_end)) is True
    assert cache.apply(change(4, "ak_old", replaced_by="ak_new", expires_at=overlap_end)) is False  # known already
    successor = cache.successor("ak_old")
    assert successor is not None and (successor.key_id, successor.psk) == ("ak_new", bytes(32))
    assert cache.grant("ak_old") is not None, "the old key admits collectors during the overlap"

    # Rotated again: sessions on the first key are handed the newest one.
    cache.apply(change(5, "ak_newest"))
    assert cache.apply(change(6, "ak_new", psk=bytes(32), replaced_by="ak_newest", expires_at=overlap_end)) is True
    newest = cache.successor("ak_old")
    assert newest is not None and newest.key_id == "ak_newest"

    # A successor that was revoked is never handed out; the overlap's end stops the old key.
    cache.apply(change(7, "ak_newest", revoked=True, psk=b""))
    after_revocation = cache.successor("ak_old")
    assert after_revocation is not None and after_revocation.key_id == "ak_new"
    clock.now = overlap_end
    assert cache.grant("ak_old") is None
    assert cache.successor("ak_old") is None


def test_a_resync_reports_a_rotation_it_did_not_hold_before() -> None:
    cache = AccessKeyCache(Clock())
    cache.apply(change(1, "ak_old"))
    listed = [change(2, "ak_new"), change(3, "ak_old", replaced_by="ak_new")]
    assert cache.replace(listed) is True
    assert cache.replace(listed) is False
