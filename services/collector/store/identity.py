"""The collector's identity in its data directory: key pair, instance uid, binding.

Layout of the data directory (created 0700):

    collector.key   Ed25519 private key, PKCS#8 PEM, mode 0600. Losing it means a new
                    identity: admins see a new fingerprint and must register again.
    state.json      {"instance_uid": "<uuid4>", "bound_server_instance": ""}, mode 0600.

The first start creates both; later starts reuse them. The binding is recorded after the
first accepted handshake and sent in every later Hello, so the collector refuses to talk
to another server instance until it is reinstalled with an empty data directory. Every
write goes to a temporary file that is fsynced and renamed over the old one, so a crash
leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from outpost.session import handshake

KEY_FILE = "collector.key"
STATE_FILE = "state.json"


class IdentityError(Exception):
    """The data directory cannot give this collector its identity; the message says why."""


@dataclass
class Identity:
    private_key: Ed25519PrivateKey
    instance_uid: str
    bound_server_instance: str

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key, as sent in Hello.public_key."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        return handshake.fingerprint(self.public_key)


class IdentityStore:
    """Loads (or creates) the identity once, then records the server binding."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.key_path = data_dir / KEY_FILE
        self.state_path = data_dir / STATE_FILE
        self.created = False
        self.key_permissions_open = False

    def load_or_create(self) -> Identity:
        """Reuse the identity in the data directory, or create one on first start."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.key_path.exists():
                if self.state_path.exists():
                    raise IdentityError(
                        f"{self.state_path} exists but {self.key_path} is missing: restore the key "
                        "or reinstall the collector with an empty data directory"
                    )
                private_key = Ed25519PrivateKey.generate()
                _write_atomic(self.key_path, _key_pem(private_key))
                self.created = True
            else:
                private_key = self._load_key()
            if self.state_path.exists():
                instance_uid, bound = self._load_state()
            else:
                instance_uid, bound = str(uuid.uuid4()), ""
                self._save_state(instance_uid, bound)
        except OSError as exc:
            raise IdentityError(f"cannot use data directory {self.data_dir}: {exc}") from exc
        return Identity(private_key, instance_uid, bound)

    def save_binding(self, identity: Identity, server_instance: str) -> bool:
        """Record the server instance this collector is bound to; True when it changed."""
        if identity.bound_server_instance == server_instance:
            return False
        self._save_state(identity.instance_uid, server_instance)
        identity.bound_server_instance = server_instance
        return True

    def _load_key(self) -> Ed25519PrivateKey:
        mode = stat.S_IMODE(self.key_path.stat().st_mode)
        self.key_permissions_open = bool(mode & 0o077)
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{self.key_path} is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{self.key_path} holds a {type(key).__name__}, not an Ed25519 key")
        return key

    def _load_state(self) -> tuple[str, str]:
        try:
            data = json.loads(self.state_path.read_text())
            instance_uid = str(uuid.UUID(data["instance_uid"]))
            bound = data.get("bound_server_instance", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise IdentityError(
                f"{self.state_path} is damaged ({exc}); restore it from a backup, or reinstall "
                "the collector with an empty data directory"
            ) from exc
        if not isinstance(bound, str):
            raise IdentityError(f"{self.state_path}: bound_server_instance must be a string")
        return instance_uid, bound

    def _save_state(self, instance_uid: str, bound: str) -> None:
        state = {"instance_uid": instance_uid, "bound_server_instance": bound}
        _write_atomic(self.state_path, (json.dumps(state, indent=2) + "\n").encode())


def _key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600: temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
