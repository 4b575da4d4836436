"""Access keys: create (the key text shown once), list, revoke, bootstrap, and the gateways' feed.

`AccessKeys` is what the servicer calls. The secret of a key is the PSK of the sealed
session's handshake, which a gateway must *use*, so it is stored encrypted (AES-256-GCM
under the registry's secret key, bound to the key id), never hashed (ADR 0021). It
leaves the registry in clear only twice: once to the admin who created the key (inside
the key text, with the current server public key so the collector pins the server from
its first connection) and to gateways, over their watch.

Every create and revoke gives the key's row the next revision and wakes the feed
(`AccessKeyFeed`), so a revocation reaches every gateway well within a second.

Bootstrap (first start, `--bootstrap-access-key-file`): when no access key was ever
created, the registry makes `bootstrap` and writes its text to the file (mode 0600),
where `outpost-run` points collectors. When the file already holds a key (a Kubernetes
Secret, or a restored data directory), that key is registered instead, so the collectors
already given it keep working: the admin token's bootstrap, mirrored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from outpost import errors
from outpost.access_key import (
    AccessKey,
    AccessKeyFormatError,
    new_key_id,
    new_secret,
    read_access_key_file,
    write_access_key_file,
)
from services.registry.domain import access_keys as rules
from services.registry.domain.access_keys import (
    AccessKeyEvent,
    AccessKeyEventKind,
    AccessKeyRecord,
    StoredAccessKey,
)
from services.registry.registry import utc_now
from services.registry.server_keys import ServerKeys
from services.registry.store import access_keys as queries
from services.registry.store.queries import RegistryStore
from services.registry.store.secrets import DecryptionError, SecretBox
from services.registry.watch import AccessKeyFeed

log = structlog.get_logger(__name__)

BINDING_PREFIX = b"outpost-registry-access-key-v1\x00"


class AccessKeyEvents:
    """The feed's reads (`outpost.change_feed.EventStore`): rows changed after a revision, decrypted."""

    def __init__(self, store: RegistryStore, box: SecretBox) -> None:
        self._store = store
        self._box = box

    async def newest_revision(self) -> int:
        async with self._store.read() as tx:
            return await queries.newest_revision(tx.session)

    async def events_after(self, since: int, limit: int, /) -> list[AccessKeyEvent]:
        async with self._store.read() as tx:
            changed = await queries.changed_after(tx.session, since, limit)
        return [self._event(key) for key in changed]

    def _event(self, key: StoredAccessKey) -> AccessKeyEvent:
        """The key's state for gateways; one that does not decrypt is sent as unusable (revoked).

        Failing closed for that key keeps every other key's watch alive: a single altered
        row must not stop revocations reaching gateways. `decrypt` logs it.
        """
        record = key.record
        revoked = record.revoked_at is not None
        if not revoked:
            try:
                psk = self.decrypt(key)
            except errors.FailedPrecondition:
                psk, revoked = b"", True
        return AccessKeyEvent(
            revision=record.revision,
            kind=AccessKeyEventKind.CHANGED,
            key_id=record.key_id,
            name=record.name,
            zone=record.zone,
            psk=b"" if revoked else psk,
            expires_at=record.expires_at,
            revoked=revoked,
            replaced_by=record.replaced_by or "",
        )

    def decrypt(self, key: StoredAccessKey) -> bytes:
        record = key.record
        if key.encryption_key_id != self._box.key_id:
            log.error("access_key_undecryptable", access_key=record.name, stored_key_id=key.encryption_key_id)
            raise errors.FailedPrecondition(
                f"access key '{record.name}' was encrypted under secret key {key.encryption_key_id}, but this "
                f"registry runs with secret key {self._box.key_id}: start it with the original --secret-key-file"
            )
        try:
            return self._box.decrypt(key.nonce, key.ciphertext, _binding(record.key_id))
        except DecryptionError as exc:
            log.error("access_key_undecryptable", access_key=record.name, key_id=self._box.key_id)
            raise errors.FailedPrecondition(
                f"access key '{record.name}' does not decrypt under secret key {self._box.key_id}: "
                "its stored row was altered; revoke it and create another"
            ) from exc


class AccessKeys:
    def __init__(
        self,
        store: RegistryStore,
        box: SecretBox,
        server_keys: ServerKeys,
        feed: AccessKeyFeed,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._box = box
        self._server_keys = server_keys
        self._feed = feed
        self._now = clock

    async def create(
        self, name: str, *, zone: str = "", expires_in_seconds: int = 0, actor: str
    ) -> tuple[AccessKeyRecord, AccessKey]:
        """A new key and its text form (returned this once; the secret is stored encrypted)."""
        name = rules.require_name(name)
        now = self._now()
        record = AccessKeyRecord(
            key_id=new_key_id(),
            name=name,
            zone=rules.require_zone(zone),
            created_at=now,
            created_by=actor,
            expires_at=rules.expiry(now, expires_in_seconds),
        )
        key = AccessKey(record.key_id, new_secret(), await self._server_keys.current_public_key())
        created = await self._insert(record, key.secret)
        if created is None:
            raise rules.name_taken(name)
        log.info(
            "access_key_created",
            access_key=name,
            key_id=record.key_id,
            zone=record.zone,
            actor=actor,
            expires_at=record.expires_at,
        )
        return created, key

    async def list_keys(self, *, include_revoked: bool) -> list[AccessKeyRecord]:
        async with self._store.read() as tx:
            return await queries.listed(tx.session, include_revoked=include_revoked)

    async def revoke(self, name: str, *, actor: str) -> AccessKeyRecord:
        """Revoke the live key(s) named `name`; revoking a revoked name again shows it, changes nothing.

        A key replaced by a rotation and still in its overlap is revoked with its successor:
        revoking a name must stop every collector using it, whichever key it holds.
        """
        name = rules.require_name(name)
        async with self._store.write(exclusive=True) as tx:
            live = await queries.live_key_ids(tx.session, name)
            now = self._now()
            for key_id in live:
                await queries.revoke(tx.session, key_id, now, actor)
            revoked = await queries.latest_by_name(tx.session, name)
            newest = await queries.newest_revision(tx.session)
        if revoked is None:
            raise rules.not_found(name)
        if live:
            self._feed.notify(newest)
            log.info("access_key_revoked", access_key=name, key_ids=sorted(live), actor=actor)
        return revoked

    async def rotate(
        self, name: str, *, overlap_seconds: int, expires_in_seconds: int = 0, actor: str
    ) -> tuple[AccessKeyRecord, AccessKeyRecord, AccessKey]:
        """Give `name` a new key; the old one stays valid for the overlap (ADR 0024).

        Returns the new record, the replaced one (with its new expiry) and the new key
        text (this once). One exclusive transaction: the new row gets revision n and the
        replaced row n + 1, so a gateway always knows the successor before it reads that
        the old key was replaced. The audit entry is written by the servicer's interceptor,
        as for every admin change.
        """
        name = rules.require_name(name)
        now = self._now()
        expires_at = rules.expiry(now, expires_in_seconds)
        key = AccessKey(new_key_id(), new_secret(), await self._server_keys.current_public_key())
        async with self._store.write(exclusive=True) as tx:
            old = rules.require_rotatable(
                name,
                await queries.live_by_name(tx.session, name),
                await queries.latest_by_name(tx.session, name),
                now,
            )
            old_until = rules.overlap_end(now, overlap_seconds, old.expires_at)
            record = AccessKeyRecord(
                key_id=key.key_id,
                name=name,
                zone=old.zone,
                created_at=now,
                created_by=actor,
                expires_at=expires_at,
            )
            # Marked replaced first (the name's unique index then admits the successor), and
            # again after the insert, so the replaced row's revision is above its successor's.
            await queries.mark_replaced(tx.session, old.key_id, record.key_id, old_until)
            if not await queries.insert(tx.session, self._stored(record, key.secret)):
                raise errors.FailedPrecondition(f"access key '{name}' changed during the rotation; try again")
            await queries.mark_replaced(tx.session, old.key_id, record.key_id, old_until)
            created = await queries.by_key_id(tx.session, record.key_id)
            replaced = await queries.by_key_id(tx.session, old.key_id)
        assert created is not None and replaced is not None
        self._feed.notify(replaced.record.revision)
        log.info(
            "access_key_rotated",
            access_key=name,
            key_id=record.key_id,
            replaced_key_id=old.key_id,
            replaced_valid_until=old_until.isoformat(),
            zone=record.zone,
            actor=actor,
        )
        return created.record, replaced.record, key

    def now(self) -> datetime:
        return self._now()

    async def bootstrap(self, path: Path) -> bool:
        """Make sure the installation has its first access key; True when one was registered now.

        Nothing happens once any key exists: keys are then the admins' business.
        """
        async with self._store.read() as tx:
            if await queries.any_key(tx.session):
                return False
        existing = _existing_key(path)
        key = existing or AccessKey(new_key_id(), new_secret(), await self._server_keys.current_public_key())
        record = AccessKeyRecord(
            key_id=key.key_id,
            name=rules.BOOTSTRAP_NAME,
            created_at=self._now(),
            created_by="bootstrap",
        )
        if await self._insert(record, key.secret) is None:
            return False  # another replica did it first, from the same file
        if existing is None:
            write_access_key_file(path, key)
        log.warning(
            "access_key_created",
            access_key=rules.BOOTSTRAP_NAME,
            key_id=key.key_id,
            path=str(path),
            from_file=existing is not None,
            advice="give collectors --access-key-file; create one key per site (outpostctl access-keys create) "
            "and revoke this one when you like",
        )
        return True

    def _stored(self, record: AccessKeyRecord, secret: bytes) -> StoredAccessKey:
        nonce, ciphertext = self._box.encrypt(secret, _binding(record.key_id))
        return StoredAccessKey(record=record, nonce=nonce, ciphertext=ciphertext, encryption_key_id=self._box.key_id)

    async def _insert(self, record: AccessKeyRecord, secret: bytes) -> AccessKeyRecord | None:
        stored = self._stored(record, secret)
        async with self._store.write(exclusive=True) as tx:
            if await queries.live_by_name(tx.session, record.name) is not None:
                return None
            if not await queries.insert(tx.session, stored):
                return None
            created = await queries.by_key_id(tx.session, record.key_id)
        assert created is not None
        self._feed.notify(created.record.revision)
        return created.record


def _binding(key_id: str) -> bytes:
    """Associated data: the key id, so a ciphertext moved to another row does not decrypt."""
    return BINDING_PREFIX + key_id.encode("ascii")


def _existing_key(path: Path) -> AccessKey | None:
    try:
        return read_access_key_file(path)
    except FileNotFoundError:
        return None
    except (OSError, AccessKeyFormatError) as exc:
        raise errors.FailedPrecondition(f"cannot use the access key file {path}: {exc}") from exc
