from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from outpost.sealing import OPENS, open_sealed, seal
from outpost.session import handshake
from services.collector.store.identity import IdentityError, IdentityStore
from services.collector.supervisor import CollectorProfile


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
    assert sorted(p.name for p in store.data_dir.iterdir()) == [  # no temp left
        "collector.key",
        "encryption.key",
        "noise.key",
        "state.json",
    ]


def test_the_noise_key_is_its_own_x25519_key_kept_0600_across_restarts(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()
    assert mode(store.noise_key_path) == 0o600
    assert len(identity.noise_private_bytes) == 32
    assert identity.noise_private_bytes != identity.encryption_key.private_bytes_raw()
    assert IdentityStore(tmp_path / "data").load_or_create().noise_private_bytes == identity.noise_private_bytes


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


def test_first_start_creates_an_encryption_key_pair_beside_the_identity_key(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    identity = store.load_or_create()

    assert store.encryption_key_created
    assert mode(store.encryption_key_path) == 0o600
    assert store.encryption_key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert len(identity.encryption_public_key) == 32
    assert identity.encryption_public_key != identity.public_key
    sealed = seal(identity.encryption_public_key, b"community", "job-1")
    assert open_sealed(identity.encryption_key, sealed, "job-1") == b"community"


def test_later_starts_reuse_the_same_encryption_key(tmp_path: Path) -> None:
    first = IdentityStore(tmp_path / "data").load_or_create()
    store = IdentityStore(tmp_path / "data")
    again = store.load_or_create()

    assert not store.encryption_key_created
    assert again.encryption_public_key == first.encryption_public_key
    sealed = seal(first.encryption_public_key, b"secret", "job-1")
    assert open_sealed(again.encryption_key, sealed, "job-1") == b"secret"


def test_an_upgraded_collector_without_an_encryption_key_gets_one_and_keeps_its_identity(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    first = store.load_or_create()
    store.save_binding(first, "instance-a")
    store.encryption_key_path.unlink()  # the data directory of a version that had no such key

    upgraded = IdentityStore(tmp_path / "data")
    identity = upgraded.load_or_create()

    assert upgraded.encryption_key_created and not upgraded.created
    assert identity.public_key == first.public_key
    assert identity.instance_uid == first.instance_uid
    assert identity.bound_server_instance == "instance-a"
    assert mode(upgraded.encryption_key_path) == 0o600
    assert identity.encryption_public_key != first.encryption_public_key


def test_an_encryption_key_without_its_identity_key_is_refused(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    store.key_path.unlink()
    store.state_path.unlink()
    with pytest.raises(IdentityError, match=r"encryption\.key exists but .*collector\.key is missing"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_an_encryption_key_file_that_is_not_an_x25519_key_is_an_error(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    ed25519_pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    store.encryption_key_path.write_bytes(ed25519_pem)
    with pytest.raises(IdentityError, match=r"encryption\.key holds a .*Ed25519PrivateKey.*, not an X25519 key"):
        IdentityStore(tmp_path / "data").load_or_create()
    store.encryption_key_path.write_text("garbage")
    with pytest.raises(IdentityError, match=r"encryption\.key is not an unencrypted PEM private key"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_an_identity_key_that_is_an_x25519_key_is_an_error(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    x25519_pem = X25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    store.key_path.write_bytes(x25519_pem)
    with pytest.raises(IdentityError, match=r"collector\.key holds a .*X25519PrivateKey.*, not an Ed25519 key"):
        IdentityStore(tmp_path / "data").load_or_create()


def test_an_encryption_key_readable_by_others_is_reported(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "data")
    store.load_or_create()
    store.encryption_key_path.chmod(0o640)
    again = IdentityStore(tmp_path / "data")
    again.load_or_create()
    assert again.key_permissions_open
    assert again.open_key_paths == [again.encryption_key_path]


def test_the_hello_carries_the_encryption_public_key_under_the_signature(tmp_path: Path) -> None:
    identity = IdentityStore(tmp_path / "data").load_or_create()
    hello = CollectorProfile(
        "edge-7", "dmz", "svc", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
    ).hello(identity)
    nonce = bytes(range(32))

    assert hello.encryption_public_key == identity.encryption_public_key
    signature = handshake.sign(identity.private_key, hello, nonce, "instance-a")
    assert handshake.verify(hello, nonce, "instance-a", signature)
    hello.encryption_public_key = bytes(32)  # swapped in transit
    assert not handshake.verify(hello, nonce, "instance-a", signature)


def test_the_hello_lists_the_sealing_algorithms_the_collector_opens(tmp_path: Path) -> None:
    identity = IdentityStore(tmp_path / "data").load_or_create()
    current = CollectorProfile("edge-7", "lab", "svc", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
    assert list(current.hello(identity).sealing_algorithms) == list(OPENS)
    legacy = CollectorProfile("edge-7", "lab", "svc", current.password_verifier, sealing_algorithms=())
    assert list(legacy.hello(identity).sealing_algorithms) == []
