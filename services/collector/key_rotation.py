"""The collector's side of an identity key rotation (ADR 0024, "Collector identity key").

`outpost-collector rotate-key` writes the next key as `collector.key.next` in the data
dir (so does the collector itself with `--rotate-key-after D`, once collector.key is that
old). The running collector notices it on its next loop turn of an accepted, registered,
sealed session (at the latest one heartbeat interval later), or on its next start, and
sends one `KeyRotation` per session: the next key signed by the current key and by
itself over the session's handshake hash. Only an accepted answer whose fingerprint is
the next key's switches (`IdentityStore.commit_next_key`: one rename); the live session
goes on, and the next handshake proves the new key. A refusal is logged and changes
nothing; the next session asks again.

Crash safety: the server may have accepted while the collector died before the answer
arrived. Then the server knows only the next key and refuses the current one. So after
a handshake refused with AUTHENTICATION_FAILED while a next key waits, the next
connection presents the next key; accepted, it is committed; refused too, the current
key is presented again. The next key is ours alone, so trying it reveals nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from outpost.agent.v1 import agent_pb2
from outpost.session import handshake, key_rotation
from services.collector.store.identity import Identity, IdentityError, IdentityStore

log = structlog.get_logger(__name__)

R = agent_pb2.DisconnectReason


class KeyRotator:
    """Which key a connection presents, when to ask for a rotation, and what to do with the answer."""

    def __init__(
        self,
        identity: Identity,
        store: IdentityStore,
        *,
        rotate_after: float = 0.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.store = store
        self.rotate_after = rotate_after
        """`--rotate-key-after`: start a rotation once collector.key is this old (0: never)."""
        self._wall_clock = wall_clock
        self._try_next = False

    def presented(self) -> Identity:
        """The identity the next connection proves: the current one, or the next key after
        the current one was refused while a rotation waits (see the module docstring)."""
        next_key = self._next_key() if self._try_next else None
        if next_key is None:
            return self.identity
        log.warning(
            "presenting_next_key",
            fingerprint=handshake.fingerprint(_raw(next_key)),
            note="the current key was refused while a rotation waits: the server may have accepted it",
        )
        return replace(self.identity, private_key=next_key)

    def accepted(self, presented: Identity) -> None:
        """A handshake with `presented` was accepted: commit it if it was the next key."""
        self._try_next = False
        if presented is not self.identity:
            self._commit(presented.private_key, "handshake")

    def refused(self, presented: Identity, reason: int) -> None:
        """A handshake was refused by the server: maybe present the other key next time."""
        if reason != R.DISCONNECT_REASON_AUTHENTICATION_FAILED:
            return
        self._try_next = presented is self.identity and self._next_key() is not None

    def request(self, presented: Identity, instance_uid: str, handshake_hash: bytes) -> agent_pb2.KeyRotation | None:
        """The KeyRotation to send in this session, if a rotation waits and this session may carry it."""
        if not handshake_hash or presented is not self.identity:
            return None
        self._schedule_if_due()
        next_key = self._next_key()
        if next_key is None:
            return None
        log.info("key_rotation_requested", fingerprint=handshake.fingerprint(_raw(next_key)))
        return key_rotation.build(instance_uid, self.identity.private_key, next_key, handshake_hash)

    def result(self, result: agent_pb2.KeyRotationResult) -> None:
        """The server's answer to this session's KeyRotation."""
        next_key = self._next_key()
        if next_key is None:
            return
        if not result.accepted:
            log.error("key_rotation_refused", reason=result.reason, fingerprint=self.identity.fingerprint)
            return
        if result.fingerprint != handshake.fingerprint(_raw(next_key)):
            log.error("key_rotation_answer_mismatch", server_fingerprint=result.fingerprint)
            return
        self._commit(next_key, "session")

    def _schedule_if_due(self) -> None:
        """`--rotate-key-after`: write the next key, as `rotate-key` would, once the key is old enough.

        The key's age is collector.key's mtime: a committed rotation renames a file written
        at the rotation's start over it, so the age restarts with every rotation.
        """
        if self.rotate_after <= 0:
            return
        try:
            age = self._wall_clock() - self.store.key_path.stat().st_mtime
            if age < self.rotate_after or self.store.next_key_path.exists():
                return
            _, created = self.store.create_next_key()
        except (OSError, IdentityError) as exc:
            log.error("key_rotation_schedule_failed", error=str(exc), path=str(self.store.next_key_path))
            return
        if created:
            log.info("key_rotation_due", key_age_seconds=int(age), rotate_after_seconds=self.rotate_after)

    def _commit(self, next_key: Ed25519PrivateKey, how: str) -> None:
        old = self.identity.fingerprint
        try:
            self.store.commit_next_key(self.identity, next_key)
        except OSError as exc:
            log.error("key_rotation_commit_failed", error=str(exc), path=str(self.store.next_key_path))
            return
        log.info("key_rotated", old_fingerprint=old, fingerprint=self.identity.fingerprint, confirmed_by=how)

    def _next_key(self) -> Ed25519PrivateKey | None:
        try:
            return self.store.next_key()
        except (OSError, IdentityError) as exc:
            log.error("next_key_unusable", error=str(exc), path=str(self.store.next_key_path))
            return None


def _raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
