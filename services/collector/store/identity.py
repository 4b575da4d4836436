"""The collector's identity in its data directory: key pairs, instance uid, binding.

Layout of the data directory (created 0700):

    collector.key   Ed25519 private key, PKCS#8 PEM, mode 0600. Losing it means a new
                    identity: admins see a new fingerprint and must register again.
    encryption.key  X25519 private key, PKCS#8 PEM, mode 0600. Discovery credentials are
                    sealed to its public key (`outpost.sealing`), so only this collector
                    can read them. The registry binds it to the collector on first sight.
    noise.key       X25519 private key, PKCS#8 PEM, mode 0600: the collector's static key
                    in the sealed session's Noise handshake (ADR 0019). Separate from the
                    other two for the reason ADR 0008 gives: one key, one purpose, so a
                    weakness or a rotation of one use never reaches another.
    state.json      {"instance_uid": "<uuid4>", "bound_server_instance": ""}, mode 0600.
    server.pin      the server's pinned Noise key (see `server_pin.py`), once learned.
    collector.key.next
                    Ed25519 private key, PKCS#8 PEM, mode 0600: a key rotation under way
                    (`outpost-collector rotate-key`, ADR 0024). Kept beside collector.key
                    until the server accepted it, then renamed over collector.key (one
                    atomic rename), so a crash at any point leaves a key the server knows.

The first start creates the keys and state; later starts reuse them. A collector upgraded from a
version without `encryption.key` creates it on its next start; the registry accepts it
once for a collector that had none (the Ed25519 proof covers it). The binding is
recorded after the first accepted handshake and sent in every later Hello, so the
collector refuses to talk to another server instance until it is reinstalled with an
empty data directory. Every write goes to a temporary file that is fsynced and renamed
over the old one, so a crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from outpost import sealing
from outpost.session import handshake

KEY_FILE = "collector.key"
ENCRYPTION_KEY_FILE = "encryption.key"
NOISE_KEY_FILE = "noise.key"
NEXT_KEY_FILE = "collector.key.next"
STATE_FILE = "state.json"


class IdentityError(Exception):
    """The data directory cannot give this collector its identity; the message says why."""


@dataclass
class Identity:
    private_key: Ed25519PrivateKey
    instance_uid: str
    bound_server_instance: str
    encryption_key: X25519PrivateKey
    noise_key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    """Loaded from `noise.key` by the store; an in-memory identity (benches, tests) gets a fresh one."""

    @property
    def noise_private_bytes(self) -> bytes:
        """The raw 32-byte X25519 private key the Noise handshake takes."""
        return self.noise_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key, as sent in Hello.public_key."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def encryption_public_key(self) -> bytes:
        """The raw 32-byte X25519 public key, as sent in Hello.encryption_public_key."""
        return sealing.public_key_bytes(self.encryption_key)

    @property
    def fingerprint(self) -> str:
        return handshake.fingerprint(self.public_key)


class IdentityStore:
    """Loads (or creates) the identity once, then records the server binding."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.key_path = data_dir / KEY_FILE
        self.encryption_key_path = data_dir / ENCRYPTION_KEY_FILE
        self.noise_key_path = data_dir / NOISE_KEY_FILE
        self.state_path = data_dir / STATE_FILE
        self.next_key_path = data_dir / NEXT_KEY_FILE
        self.created = False
        self.encryption_key_created = False
        # Key files group or others may read or write: they still load, and app.py warns.
        self.open_key_paths: list[Path] = []

    @property
    def key_permissions_open(self) -> bool:
        return bool(self.open_key_paths)

    def load_or_create(self) -> Identity:
        """Reuse the identity in the data directory, or create one on first start."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            private_key = self._identity_key()
            encryption_key = self._encryption_key()
            noise_key = self._noise_key()
            if self.state_path.exists():
                instance_uid, bound = self._load_state()
            else:
                instance_uid, bound = str(uuid.uuid4()), ""
                self._save_state(instance_uid, bound)
        except OSError as exc:
            raise IdentityError(f"cannot use data directory {self.data_dir}: {exc}") from exc
        return Identity(private_key, instance_uid, bound, encryption_key=encryption_key, noise_key=noise_key)

    def save_binding(self, identity: Identity, server_instance: str) -> bool:
        """Record the server instance this collector is bound to; True when it changed."""
        if identity.bound_server_instance == server_instance:
            return False
        self._save_state(identity.instance_uid, server_instance)
        identity.bound_server_instance = server_instance
        return True

    def next_key(self) -> Ed25519PrivateKey | None:
        """The key a rotation under way is moving to (`collector.key.next`), if any."""
        if not self.next_key_path.exists():
            return None
        key = self._load_key(self.next_key_path)
        if not isinstance(key, Ed25519PrivateKey):
            raise _wrong_kind(self.next_key_path, key, "an Ed25519")
        return key

    def create_next_key(self) -> tuple[Ed25519PrivateKey, bool]:
        """The rotation's next key: the one already waiting, or a new one (True when created).

        Requires an identity: there is nothing to rotate before the first start.
        """
        if not self.key_path.exists():
            raise IdentityError(f"{self.key_path} does not exist: start the collector once before rotating its key")
        waiting = self.next_key()
        if waiting is not None:
            return waiting, False
        created = Ed25519PrivateKey.generate()
        _write_atomic(self.next_key_path, _key_pem(created))
        return created, True

    def commit_next_key(self, identity: Identity, next_key: Ed25519PrivateKey) -> None:
        """The server accepted `next_key`: rename it over collector.key, and use it from now on.

        One rename: a crash before it leaves both files (the next start tries the next key
        when the current one is refused), after it only the new key.
        """
        if self.next_key_path.exists():
            self.next_key_path.replace(self.key_path)
            _fsync_dir(self.data_dir)
        identity.private_key = next_key

    def _identity_key(self) -> Ed25519PrivateKey:
        if self.key_path.exists():
            key = self._load_key(self.key_path)
            if not isinstance(key, Ed25519PrivateKey):
                raise _wrong_kind(self.key_path, key, "an Ed25519")
            return key
        for leftover in (self.state_path, self.encryption_key_path):
            if leftover.exists():
                raise IdentityError(
                    f"{leftover} exists but {self.key_path} is missing: restore the key "
                    "or reinstall the collector with an empty data directory"
                )
        created = Ed25519PrivateKey.generate()
        _write_atomic(self.key_path, _key_pem(created))
        self.created = True
        return created

    def _encryption_key(self) -> X25519PrivateKey:
        """Created beside an existing identity too: that is the upgrade from a version without one."""
        if self.encryption_key_path.exists():
            key = self._load_key(self.encryption_key_path)
            if not isinstance(key, X25519PrivateKey):
                raise _wrong_kind(self.encryption_key_path, key, "an X25519")
            return key
        created = X25519PrivateKey.generate()
        _write_atomic(self.encryption_key_path, _key_pem(created))
        self.encryption_key_created = True
        return created

    def _noise_key(self) -> X25519PrivateKey:
        """Created beside an existing identity too (the upgrade to sealed sessions). Not part of
        the identity the registry knows: a lost one is replaced silently, nothing is pinned to it."""
        if self.noise_key_path.exists():
            key = self._load_key(self.noise_key_path)
            if not isinstance(key, X25519PrivateKey):
                raise _wrong_kind(self.noise_key_path, key, "an X25519")
            return key
        created = X25519PrivateKey.generate()
        _write_atomic(self.noise_key_path, _key_pem(created))
        return created

    def _load_key(self, path: Path) -> PrivateKeyTypes:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            self.open_key_paths.append(path)
        try:
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{path} is not an unencrypted PEM private key") from exc

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


def _wrong_kind(path: Path, key: PrivateKeyTypes, described: str) -> IdentityError:
    return IdentityError(f"{path} holds a {type(key).__name__}, not {described} key")


def _key_pem(private_key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
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
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
