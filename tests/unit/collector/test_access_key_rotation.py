"""Which access key a collector presents once the server handed it a new one (ADR 0024).

The rule: the data directory's `access.key` when present, the configured key when there
is none or the stored one was refused; the server keys of both stay pinned.
"""

from __future__ import annotations

from pathlib import Path

from outpost.access_key import AccessKey, read_access_key_file
from services.collector.store.access_key_store import AccessKeyStore
from services.collector.store.server_pin import ServerPinStore
from services.collector.transport.sealed import SealedSessions

SERVER_A, SERVER_B = bytes([1]) * 32, bytes([2]) * 32
CONFIGURED = AccessKey("ak_configured", bytes([7]) * 32, SERVER_A)
ROTATED = AccessKey("ak_rotated", bytes([8]) * 32, SERVER_B)


def sessions(tmp_path: Path) -> SealedSessions:
    return SealedSessions(CONFIGURED, bytes(32), ServerPinStore(tmp_path), stored=AccessKeyStore(tmp_path))


def test_without_a_stored_key_the_configured_one_is_presented(tmp_path: Path) -> None:
    assert sessions(tmp_path).access_key_for_connection() == CONFIGURED


def test_a_received_key_is_stored_private_and_presented_from_the_next_connection(tmp_path: Path) -> None:
    sealed = sessions(tmp_path)
    sealed.access_key_received(ROTATED.encode())
    path = tmp_path / "access.key"
    assert read_access_key_file(path) == ROTATED
    assert path.stat().st_mode & 0o777 == 0o600
    assert sealed.access_key_for_connection() == ROTATED
    # A restarted collector (a new SealedSessions) reads it from the data dir.
    assert sessions(tmp_path).access_key_for_connection() == ROTATED


def test_taking_a_new_key_never_drops_a_pin(tmp_path: Path) -> None:
    sealed = sessions(tmp_path)
    sealed.access_key_received(ROTATED.encode())
    assert {k.public_key for k in sealed.pinned()} == {SERVER_A, SERVER_B}


def test_a_refused_stored_key_falls_back_to_the_configured_one_then_tries_again(tmp_path: Path) -> None:
    sealed = sessions(tmp_path)
    sealed.access_key_received(ROTATED.encode())
    assert sealed.access_key_for_connection() == ROTATED
    sealed.access_key_refused()
    assert sealed.access_key_for_connection() == CONFIGURED
    sealed.access_key_refused()
    assert sealed.access_key_for_connection() == ROTATED  # both refused: start over


def test_a_malformed_or_known_key_changes_nothing(tmp_path: Path) -> None:
    sealed = sessions(tmp_path)
    sealed.access_key_received("not-a-key")
    sealed.access_key_received(CONFIGURED.encode())
    assert not (tmp_path / "access.key").exists()
    assert sealed.access_key_for_connection() == CONFIGURED


def test_an_unreadable_stored_key_is_ignored_for_the_configured_one(tmp_path: Path) -> None:
    (tmp_path / "access.key").write_text("garbage\n")
    assert sessions(tmp_path).access_key_for_connection() == CONFIGURED
