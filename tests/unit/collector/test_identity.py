from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from outpost.session import handshake
from services.collector.store.identity import IdentityError, IdentityStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_a_private_key_readable_only_by_the_owner(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()

    assert store.created
    assert mode(store.key_path) == 0o600
    assert mode(store.state_path) == 0o600
    assert mode(store.data_dir) == 0o700
    assert store.key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert json.loads(store.state_path.read_text()) == {
        "instance_uid": identity.instance_uid,
        "bound_server_instance": "",
    }
    assert len(identity.public_key) == 32
    assert identity.fingerprint == handshake.fingerprint(identity.public_key)
    Ed25519PublicKey.from_public_bytes(identity.public_key).verify(identity.private_key.sign(b"x"), b"x")


def test_later_starts_reuse_the_same_key_and_instance_uid(tmp_path: Path) -> None:
    first = IdentityStore(tmp_path / "data").load_or_create()
    store = IdentityStore(tmp_path / "data")
    again = store.load_or_create()

    assert not store.created
    assert again.public_key == first.public_key
    assert again.instance_uid == first.instance_uid


def test_the_binding_is_persisted_and_reloaded(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()

    assert store.save_binding(identity, "instance-a")
    assert identity.bound_server_instance == "instance-a"
    assert not store.save_binding(identity, "instance-a")  # unchanged: no write

    reloaded = IdentityStore(tmp_path / "data").load_or_create()
    assert reloaded.bound_server_instance == "instance-a"
    assert reloaded.instance_uid == identity.instance_uid
    assert mode(store.state_path) == 0o600
    assert sorted(p.name for p in store.data_dir.iterdir()) == ["collector.key", "state.json"]  # no temp left


def test_a_binding_write_replaces_the_file_instead_of_rewriting_it_in_place(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()
    before = store.state_path.stat().st_ino
    store.save_binding(identity, "instance-a")
    assert store.state_path.stat().st_ino != before  # a new file renamed over the old one


def test_a_failed_binding_write_keeps_the_old_state(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()
    (store.data_dir / ".state.json.tmp").mkdir()  # the temp file cannot be written
    with pytest.raises(OSError):
        store.save_binding(identity, "instance-a")
    assert identity.bound_server_instance == ""
    assert json.loads(store.state_path.read_text())["bound_server_instance"] == ""


def test_a_state_file_without_its_key_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    store.key_path.unlink()
    with pytest.raises(IdentityError, match=r"collector\.key is missing"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_a_key_without_its_state_gets_a_fresh_state(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    first = store.load_or_create()
    store.state_path.unlink()
    again = IdentityStore(tmp_path / "data").load_or_create()
    assert again.public_key == first.public_key
    assert again.bound_server_instance == ""


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", '{"instance_uid": "not-a-uuid"}', '{"instance_uid": "%s", "bound_server_instance": 5}'],
)
def test_a_damaged_state_file_is_an_error_that_names_the_file(tmp_path: Path, content: str) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()
    store.state_path.write_text(content.replace("%s", identity.instance_uid))
    with pytest.raises(IdentityError, match=r"state\.json"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_a_key_file_that_is_not_an_ed25519_key_is_an_error(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    store.key_path.write_text("garbage")
    with pytest.raises(IdentityError, match="not an unencrypted PEM private key"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_a_key_readable_by_others_is_reported(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    store.key_path.chmod(0o644)
    again = IdentityStore(tmp_path / "data")
    again.load_or_create()
    assert again.key_permissions_open
