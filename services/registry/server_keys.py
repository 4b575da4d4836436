"""The server's Noise static keys: created at first start, kept encrypted, handed to gateways.

The private half lives in `server_keys` as AES-256-GCM ciphertext under the registry's
secret key (`store.secrets`, the same scheme as credentials), bound by associated data
to its public half, so a copy of the database alone does not let anyone impersonate the
server (ADR 0019, "A stolen database"; ADR 0021). Every registry replica, and so every
gateway, uses the same key: a collector pinned to it can fail over anywhere.

`ensure_current` runs at every start; the first one creates the key. The public half is
stored in clear: access keys pin it and `GetServerInfo` shows its fingerprint even when
the private half cannot be read (the registry then still starts, for diagnosis). Two replicas
starting together on one PostgreSQL both try; the partial unique index on the current
state lets one insert win, and the other reads the winner's key.

`rotate` (ADR 0024) adds a `next` key with its activation time and gives the current one
the end of its acceptance window. From then on every read computes the states for "now"
(`domain.server_keys.effective`) and writes a flip it finds back to the table, so the
rotation needs no timer: a registry that was down at the activation instant is right at
its next read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from outpost import errors
from outpost.session.handshake import fingerprint
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

    async def public_keys(self) -> tuple[queries.StoredServerKey, queries.StoredServerKey | None]:
        """(the current key, the announced next key or None) now, public halves only."""
        stored = await self._effective()
        current = next((k for k in stored if k.state is ServerKeyState.CURRENT), None)
        if current is None:
            raise errors.Unavailable("the server key is not created yet")
        return current, next((k for k in stored if k.state is ServerKeyState.NEXT), None)

    async def current_public_key(self) -> bytes:
        """The public half of the current key (stored in clear): what new access keys pin."""
        return (await self.public_keys())[0].public_key

    async def current_fingerprint(self) -> str:
        return fingerprint(await self.current_public_key())

    async def rotate(self, *, activate_in_seconds: int, retire_after_seconds: int, actor: str) -> rules.RotationPlan:
        """Announce a new server key, current from `now + activate_in`; the current one is accepted
        until `retire_after` past that. FailedPrecondition while another rotation is announced."""
        plan = rules.plan_rotation(
            await self.keys(),
            self._now(),
            activate_in_seconds=activate_in_seconds,
            retire_after_seconds=retire_after_seconds,
        )
        key = plan.next_key
        nonce, ciphertext = self._box.encrypt(key.private_key, _binding(key.public_key))
        async with self._store.write(exclusive=True) as tx:
            # Re-checked under the write lock: two admins rotating at once get one rotation.
            stored = rules.effective(await queries.accepted(tx.session), self._now())
            if any(k.state is ServerKeyState.NEXT for k in stored):
                raise errors.FailedPrecondition("another server key rotation was announced just now")
            await queries.set_retires_at(tx.session, plan.replaced.public_key, plan.replaced_retires_at)
            await queries.insert(
                tx.session,
                queries.StoredServerKey(
                    public_key=key.public_key,
                    state=ServerKeyState.NEXT,
                    nonce=nonce,
                    ciphertext=ciphertext,
                    encryption_key_id=self._box.key_id,
                    created_at=key.created_at,
                    activated_at=key.activated_at,
                ),
            )
        log.warning(
            "server_key_rotation_announced",
            next_fingerprint=key.fingerprint,
            activates_at=key.activated_at,
            current_fingerprint=plan.replaced.fingerprint,
            current_retires_at=plan.replaced_retires_at,
            actor=actor,
        )
        return plan

    async def ensure_current(self, *, replace_unreadable: bool = False) -> None:
        """Load the current key, creating it on an installation's first start.

        A key that does not decrypt under this registry's secret key is never replaced by
        a new one (collectors pin it): the registry starts, logs the problem, and
        `GetServerKeys` names it until the original key file is back.
        `replace_unreadable` (a registry with an in-memory secret key: in-process tests
        only) drops such keys instead.
        """
        if replace_unreadable:
            async with self._store.write(exclusive=False) as tx:
                dropped = await queries.delete_unreadable(tx.session, self._box.key_id)
            if dropped:
                log.warning("server_key_replaced", dropped=dropped, reason="stored under another secret key")
        stored = await self._stored()
        if not any(k.state is ServerKeyState.CURRENT for k in stored):
            await self._create()
            stored = await self._stored()
        try:
            [self._decrypt(k) for k in stored]
        except errors.FailedPrecondition as exc:
            log.error(
                "server_key_undecryptable",
                fingerprint=await self.current_fingerprint(),
                key_id=self._box.key_id,
                problem=str(exc),
                advice="gateways cannot start until the registry runs with its original --secret-key-file",
            )

    async def keys(self) -> list[ServerKey]:
        """Every key accepted now, decrypted, current first; FailedPrecondition names an unreadable one."""
        return [self._decrypt(s) for s in await self._effective()]

    async def _stored(self) -> list[queries.StoredServerKey]:
        async with self._store.read() as tx:
            return await queries.accepted(tx.session)

    async def _effective(self) -> list[queries.StoredServerKey]:
        """The keys accepted now with their states now; a flip time made is written back once."""
        now = self._now()
        stored = await self._stored()
        accepted = rules.effective(stored, now)
        states = {k.public_key: k.state for k in accepted}
        if any(states.get(k.public_key, ServerKeyState.RETIRED) is not k.state for k in stored):
            async with self._store.write(exclusive=True) as tx:
                await queries.write_states(tx.session, states, now)
            current = [fingerprint(k.public_key) for k in accepted if k.state is ServerKeyState.CURRENT]
            log.info("server_key_states_updated", current=current, accepted=len(accepted))
        return accepted

    async def _create(self) -> None:
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
        if created:  # else another replica created it first; the caller reads theirs
            log.warning(
                "server_key_created",
                fingerprint=key.fingerprint,
                advice="collectors pin this key; it is stored encrypted under the registry's secret key file, "
                "so back that file up with the database",
            )

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
            retires_at=stored.retires_at,
        )


def _binding(public_key: bytes) -> bytes:
    return BINDING_PREFIX + public_key
