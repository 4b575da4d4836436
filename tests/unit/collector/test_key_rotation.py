"""The collector's identity key rotation: the next key file, the answer, the crash case (ADR 0024)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake, key_rotation
from services.collector import rotate_key_command
from services.collector.key_rotation import KeyRotator
from services.collector.store.identity import IdentityError, IdentityStore

R = agent_pb2.DisconnectReason
HASH = bytes(32)


def test_rotate_key_writes_one_private_next_key_and_keeps_it_when_run_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = IdentityStore(tmp_path)
    store.load_or_create()
    assert rotate_key_command.run(["--data-dir", str(tmp_path)], "outpost-collector", "/nowhere") == 0
    first = store.next_key_path.read_bytes()
    assert stat.S_IMODE(store.next_key_path.stat().st_mode) == 0o600
    assert "created: next key SHA256:" in capsys.readouterr().out
    assert rotate_key_command.run(["--data-dir", str(tmp_path)], "outpost-collector", "/nowhere") == 0
    assert store.next_key_path.read_bytes() == first
    assert "already waiting" in capsys.readouterr().out


def test_rotate_key_needs_an_identity_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rotate_key_command.run(["--data-dir", str(tmp_path)], "outpost-collector", "/nowhere") == 2
    assert "start the collector once" in capsys.readouterr().err
    with pytest.raises(IdentityError):
        IdentityStore(tmp_path).create_next_key()


def test_the_request_is_signed_by_both_keys_and_an_accepted_answer_switches_atomically(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    identity = store.load_or_create()
    old_public = identity.public_key
    rotator = KeyRotator(identity, store)
    assert rotator.request(identity, identity.instance_uid, HASH) is None  # nothing waiting
    next_key, _ = store.create_next_key()

    rotation = rotator.request(identity, identity.instance_uid, HASH)
    assert rotation is not None
    assert key_rotation.problem(rotation, identity.instance_uid, old_public, HASH) is None
    assert rotator.request(identity, identity.instance_uid, b"") is None  # only in a sealed session

    new_fingerprint = handshake.fingerprint(rotation.new_public_key)
    rotator.result(agent_pb2.KeyRotationResult(accepted=False, fingerprint=identity.fingerprint, reason="no"))
    assert identity.public_key == old_public and store.next_key_path.exists()
    rotator.result(agent_pb2.KeyRotationResult(accepted=True, fingerprint="SHA256:someone-else"))
    assert identity.public_key == old_public and store.next_key_path.exists()

    rotator.result(agent_pb2.KeyRotationResult(accepted=True, fingerprint=new_fingerprint))
    assert identity.fingerprint == new_fingerprint
    assert not store.next_key_path.exists()
    reloaded = IdentityStore(tmp_path).load_or_create()
    assert (reloaded.fingerprint, reloaded.instance_uid) == (new_fingerprint, identity.instance_uid)
    assert next_key.public_key().public_bytes_raw() == reloaded.public_key


def test_after_a_crash_before_the_answer_the_refused_current_key_makes_way_for_the_next(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    identity = store.load_or_create()
    next_key, _ = store.create_next_key()
    rotator = KeyRotator(identity, store)
    assert rotator.presented() is identity

    rotator.refused(identity, R.DISCONNECT_REASON_RATE_LIMITED)
    assert rotator.presented() is identity  # only a refused key makes the next one worth a try
    rotator.refused(identity, R.DISCONNECT_REASON_AUTHENTICATION_FAILED)
    probe = rotator.presented()
    assert probe is not identity and probe.public_key == next_key.public_key().public_bytes_raw()
    assert rotator.request(probe, identity.instance_uid, HASH) is None  # no rotation from the probe

    rotator.refused(probe, R.DISCONNECT_REASON_AUTHENTICATION_FAILED)
    assert rotator.presented() is identity  # refused too: back to the current key

    rotator.refused(identity, R.DISCONNECT_REASON_AUTHENTICATION_FAILED)
    probe = rotator.presented()
    rotator.accepted(probe)
    assert identity.public_key == probe.public_key and not store.next_key_path.exists()
    assert rotator.presented() is identity


def test_rotate_key_after_writes_the_next_key_once_the_key_is_old_enough(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path)
    identity = store.load_or_create()
    now = [store.key_path.stat().st_mtime + 10]
    rotator = KeyRotator(identity, store, rotate_after=60, wall_clock=lambda: now[0])
    assert rotator.request(identity, identity.instance_uid, HASH) is None
    assert not store.next_key_path.exists()

    now[0] += 60
    rotation = rotator.request(identity, identity.instance_uid, HASH)
    assert rotation is not None and store.next_key_path.exists()
    waiting = store.next_key_path.read_bytes()
    assert rotator.request(identity, identity.instance_uid, HASH) is not None
    assert store.next_key_path.read_bytes() == waiting  # one next key until it is accepted

    off = KeyRotator(identity, store, rotate_after=0, wall_clock=lambda: now[0] + 10**9)
    store.next_key_path.unlink()
    assert off.request(identity, identity.instance_uid, HASH) is None
