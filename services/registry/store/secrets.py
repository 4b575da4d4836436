"""Encryption at rest: the registry's secret key file and AES-256-GCM under it.

The secret key is 32 random bytes in a file (`--secret-key-file`, default
`<data-dir>/registry-secret.key`), never in the database: a copy of the database alone
yields only ciphertext. The registry creates the file (mode 0600) on first start when
it is absent, and refuses to start when it exists but holds anything other than exactly
32 bytes, or when group or others have any access to it: a secret key that anyone else
on the machine could have read is not a secret any more.

Every replica of a registry must run with the same key file (in Kubernetes: one Secret
mounted into every pod). Each ciphertext records the `key_id` it was made under (a
fingerprint of the key, not the key), so a registry started with a different key names
the problem instead of failing a decryption without explanation.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_DOMAIN = b"outpost-registry-secret-key-id\x00"
CREATE_ADVICE = "create one with: head -c 32 /dev/urandom > FILE && chmod 600 FILE"


class SecretKeyError(Exception):
    """The secret key file cannot be used; the message is the one line the operator sees."""


class DecryptionError(Exception):
    """A ciphertext did not decrypt: another key, other associated data, or altered bytes."""


@dataclass(frozen=True)
class SecretKey:
    key: bytes
    created: bool
    """True when this start created the file (a new key: tell the operator to back it up)."""

    def __repr__(self) -> str:
        return f"SecretKey(key_id={key_id(self.key)!r}, created={self.created})"


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key: names it in rows and messages, reveals nothing."""
    return hashlib.sha256(KEY_ID_DOMAIN + key).hexdigest()[:16]


def load_or_create_secret_key(path: Path) -> SecretKey:
    """The key in `path`, created (0600, 32 random bytes) when the file does not exist."""
    created = False
    try:
        if not path.exists():
            created = _create(path)
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SecretKeyError(f"secret key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretKeyError(
                f"secret key file {path} is accessible to group or others (mode {mode:04o}); run: chmod 600 {path}"
            )
        key = path.read_bytes()
    except OSError as exc:
        raise SecretKeyError(f"cannot use secret key file {path}: {exc}") from exc
    if len(key) != SECRET_KEY_BYTES:
        raise SecretKeyError(
            f"secret key file {path} must hold exactly {SECRET_KEY_BYTES} bytes, not {len(key)}; "
            f"restore the original (credentials stored under it are unreadable without it), or, "
            f"if there is none, {CREATE_ADVICE}"
        )
    return SecretKey(key, created)


def _create(path: Path) -> bool:
    """Write a new key without ever leaving a partial file; False if another process won."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(os.urandom(SECRET_KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)  # fails if the name exists: never replaces a key
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


class SecretBox:
    """AES-256-GCM under the secret key, with a random 96-bit nonce per encryption."""

    def __init__(self, key: bytes) -> None:
        if len(key) != SECRET_KEY_BYTES:
            raise ValueError(f"the secret key must be {SECRET_KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext with its tag)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, nonce: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, associated_data)
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext does not decrypt under this key") from exc
