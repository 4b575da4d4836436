"""`server.pin`: the gateway key a collector learned on first contact, kept 0600, never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from outpost.access_key import AccessKey
from outpost.session.handshake import fingerprint
from services.collector.store.server_pin import ServerPinError, ServerPinStore
from services.collector.transport.sealed import SealedSessions

KEY = bytes(range(32))


def test_nothing_is_pinned_until_a_key_is_saved_then_it_reloads_with_its_fingerprint(tmp_path: Path) -> None:
    store = ServerPinStore(tmp_path)
    assert store.load() is None
    store.save(KEY)
    assert ServerPinStore(tmp_path).load() == KEY
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    assert fingerprint(KEY) in store.path.read_text()  # an operator can compare it by eye
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.pin"]  # no temp file left


@pytest.mark.parametrize("text", ["", "not base64 !!\n", "AAAA\n", "# only a comment\n"])
def test_a_damaged_pin_refuses_rather_than_trusting_whoever_answers(tmp_path: Path, text: str) -> None:
    (tmp_path / "server.pin").write_text(text)
    with pytest.raises(ServerPinError) as damaged:
        ServerPinStore(tmp_path).load()
    assert "delete it" in str(damaged.value)


def test_the_access_keys_server_key_wins_over_the_pin_file(tmp_path: Path) -> None:
    pins = ServerPinStore(tmp_path)
    pins.save(KEY)
    other = bytes(32)
    with_key = SealedSessions(AccessKey("ak_x", bytes(32), other), bytes(32), pins)
    assert with_key.server_key() == other
    without = SealedSessions(AccessKey("ak_x", bytes(32)), bytes(32), pins)
    assert without.server_key() == KEY
