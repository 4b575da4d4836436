"""Which pinned server key a collector addresses during a rotation, and when it drops the old one (ADR 0024)."""

from __future__ import annotations

from pathlib import Path

from outpost.access_key import AccessKey
from services.collector.store.server_pin import PinnedKey, ServerPinStore
from services.collector.transport.sealed import SealedSessions

OLD, NEW, OTHER = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sessions(tmp_path: Path, clock: Clock, server_key: bytes | None = OLD) -> SealedSessions:
    return SealedSessions(AccessKey("ak_x", bytes(32), server_key), bytes(32), ServerPinStore(tmp_path), clock=clock)


def test_the_announced_key_is_pinned_beside_the_current_one_and_used_from_its_activation(tmp_path: Path) -> None:
    clock = Clock()
    sealed = sessions(tmp_path, clock)
    sealed.announced(NEW, 1060.0)
    sealed.announced(NEW, 1060.0)  # again: nothing changes
    assert ServerPinStore(tmp_path).load_all() == [PinnedKey(NEW, 1060.0)]
    assert sealed.server_key() == OLD
    clock.now = 1060.0
    assert sealed.server_key() == NEW


def test_a_failed_handshake_falls_back_to_the_other_pinned_key_never_to_first_contact(tmp_path: Path) -> None:
    clock = Clock()
    sealed = sessions(tmp_path, clock)
    sealed.announced(NEW, 900.0)
    assert sealed.server_key() == NEW
    sealed.handshake_failed()
    assert sealed.server_key() == OLD
    sealed.handshake_failed()
    assert sealed.server_key() == NEW  # every key failed once: start over, still pinned


def test_proving_the_active_new_key_retires_the_old_one_even_the_access_keys(tmp_path: Path) -> None:
    clock = Clock()
    sealed = sessions(tmp_path, clock)
    sealed.announced(NEW, 900.0)
    sealed.handshake_proven(NEW)
    assert ServerPinStore(tmp_path).load_all() == [PinnedKey(NEW), PinnedKey(OLD, retired=True)]
    assert [k.public_key for k in sealed.pinned()] == [NEW]
    sealed.handshake_failed()
    assert sealed.server_key() == NEW


def test_proving_the_old_key_before_the_activation_changes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    sealed = sessions(tmp_path, clock)
    sealed.announced(NEW, 2000.0)
    sealed.handshake_proven(OLD)
    sealed.handshake_proven(NEW)  # accepted early by a gateway: not yet a reason to drop the old key
    assert ServerPinStore(tmp_path).load_all() == [PinnedKey(NEW, 2000.0)]


def test_a_first_contact_pin_gets_the_announcement_too(tmp_path: Path) -> None:
    clock = Clock()
    ServerPinStore(tmp_path).save(OLD)
    sealed = sessions(tmp_path, clock, server_key=None)
    sealed.announced(NEW, 1500.0)
    assert ServerPinStore(tmp_path).load_all() == [PinnedKey(OLD), PinnedKey(NEW, 1500.0)]
    assert sealed.server_key() == OLD
