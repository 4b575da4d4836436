"""Trust on first use of SSH host keys, persisted under a directory."""

from __future__ import annotations

from pathlib import Path

from services.collector.discovery.host_keys import HostKeyStore


def test_the_first_key_is_recorded_and_a_different_one_is_not_trusted(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "keys")
    assert store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:first")
    assert store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:first")
    assert not store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:second")
    assert store.check("10.0.0.5", 2222, "ssh-rsa", "SHA256:other-port")

    reloaded = HostKeyStore(tmp_path / "keys")
    record = reloaded.lookup("10.0.0.5", 22)
    assert record is not None and (record.key_type, record.fingerprint) == ("ssh-ed25519", "SHA256:first")
    assert not reloaded.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:second")


def test_forget_lets_the_next_key_be_a_first_use_again(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path)
    store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:old")
    store.check("10.0.0.6", 22, "ssh-ed25519", "SHA256:kept")

    assert store.forget("10.0.0.5", 22)
    assert not store.forget("10.0.0.5", 22)
    assert store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:new")
    reloaded = HostKeyStore(tmp_path)
    assert reloaded.lookup("10.0.0.5", 22).fingerprint == "SHA256:new"  # type: ignore[union-attr]
    assert reloaded.lookup("10.0.0.6", 22).fingerprint == "SHA256:kept"  # type: ignore[union-attr]


def test_a_corrupt_line_is_skipped(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path)
    store.check("10.0.0.5", 22, "ssh-ed25519", "SHA256:good")
    with store.path.open("a") as file:
        file.write("{not json\n")

    assert HostKeyStore(tmp_path).lookup("10.0.0.5", 22) is not None
