"""The server's Noise static keys: created at first start, kept encrypted, handed to gateways.

The private half lives in `server_keys` as AES-256-GCM ciphertext under the registry's
secret key (`store.secrets`, the same scheme as credentials), bound by associated data
to its public half, so a copy of the database alone does not let anyone impersonate the
server (ADR 0019, "A stolen database"; ADR 0021). Every registry replica, and so every
gateway, uses the same key: a collector pinned to it can fail over anywhere.

`ensure_current` runs at every start; the first one creates the key. Two replicas
starting together on one PostgreSQL both try; the partial unique index on the current
state lets one insert win, and the other reads the winner's key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from outpost import errors
from services.registry.domain import server_keys as rules
from services.registry.domain.server_keys import ServerKey, ServerKeyState
from services.registry.registry import utc_now
from services.registry.store import server_keys as queries
from services.registry.store.queries import RegistryStore
from services.registry.store.secrets import DecryptionError, SecretBox

log = structlog.get_logger(__name__)

BINDING_PREFIX = b"outpost-registry-server-key-v1\x00"


class ServerKeys:
    def __init__(self, store: RegistryStore, box: SecretBox, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._box = box
        self._now = clock
        self._current: ServerKey | None = None

    @property
    def current(self) -> ServerKey:
        """The key gateways answer with (loaded by `ensure_current` at start)."""
        if self._current is None:
            raise errors.Unavailable("the server key is not loaded yet")
        return self._current

    async def ensure_current(self, *, replace_unreadable: bool = False) -> ServerKey:
        """Load the current key, creating it on an installation's first start.

        `replace_unreadable` (a registry with an in-memory secret key: in-process tests
        only) drops keys stored under another secret key instead of refusing to start.
        """
        if replace_unreadable:
            async with self._store.write(exclusive=False) as tx:
                dropped = await queries.delete_unreadable(tx.session, self._box.key_id)
            if dropped:
                log.warning("server_key_replaced", dropped=dropped, reason="stored under another secret key")
        keys = await self.keys()
        if not any(k.state is ServerKeyState.CURRENT for k in keys):
            key = rules.new_server_key(self._now())
            nonce, ciphertext = self._box.encrypt(key.private_key, _binding(key.public_key))
            stored = queries.StoredServerKey(
                public_key=key.public_key,
                state=key.state,
                nonce=nonce,
                ciphertext=ciphertext,
                encryption_key_id=self._box.key_id,
                created_at=key.created_at,
                activated_at=key.activated_at,
            )
            async with self._store.write(exclusive=False) as tx:
                created = await queries.insert(tx.session, stored)
            if created:
                log.warning(
                    "server_key_created",
                    fingerprint=key.fingerprint,
                    advice="collectors pin this key; it is stored encrypted under the registry's secret key file, "
                    "so back that file up with the database",
                )
            keys = await self.keys()
        self._current = next(k for k in keys if k.state is ServerKeyState.CURRENT)
        return self._current

    async def keys(self) -> list[ServerKey]:
        """Every accepted key, decrypted, current first."""
        async with self._store.read() as tx:
            stored = await queries.accepted(tx.session)
        return rules.ordered([self._decrypt(s) for s in stored])

    def _decrypt(self, stored: queries.StoredServerKey) -> ServerKey:
        if stored.encryption_key_id != self._box.key_id:
            raise errors.FailedPrecondition(
                f"the server key was encrypted under secret key {stored.encryption_key_id}, but this registry runs "
                f"with secret key {self._box.key_id}: start it with the original --secret-key-file"
            )
        try:
            private = self._box.decrypt(stored.nonce, stored.ciphertext, _binding(stored.public_key))
        except DecryptionError as exc:
            raise errors.FailedPrecondition(
                f"the server key does not decrypt under secret key {self._box.key_id}: its stored row was altered"
            ) from exc
        if rules.public_of(private) != stored.public_key:
            raise errors.FailedPrecondition("the stored server key's private half does not match its public half")
        return ServerKey(
            public_key=stored.public_key,
            private_key=private,
            state=stored.state,
            created_at=stored.created_at,
            activated_at=stored.activated_at,
        )


def _binding(public_key: bytes) -> bytes:
    return BINDING_PREFIX + public_key
