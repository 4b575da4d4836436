"""Queries over the registry's tables, grouped into transactions.

Ordering of events. A watcher reads "events with revision > N" and then moves its cursor
to the newest one it saw. That is only safe if no event with a *lower* revision can
commit later. Two writers on PostgreSQL could draw revisions 5 and 6 from the sequence
and commit 6 first, and a watcher would skip 5 forever. So every transaction that
appends an event is `exclusive`: it takes a transaction-scoped advisory lock before it
draws a revision, which serialises event writers across all registry replicas (admin
actions and first contacts are rare, so this costs nothing that matters). On SQLite the
database itself allows one writer at a time; an in-process lock keeps our own writers
from colliding there (one process per SQLite file is the embedded mode's rule).

Authentications of known collectors and session reports append no event and, on
PostgreSQL, run concurrently. Refusal records serialise among themselves only (their own
advisory lock), so a flood of refused handshakes never queues behind admin actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from outpost import paging
from outpost.db import session_factory
from outpost.password_proof import PasswordParameters
from outpost.session import handshake
from services.registry.domain import passwords
from services.registry.domain.authentication import AuthAttempt
from services.registry.domain.collectors import (
    Collector,
    CollectorEvent,
    CollectorState,
    EventKind,
    NameConflict,
    SessionReport,
    StateChange,
)
from services.registry.domain.credentials import CredentialInfo, CredentialType, EncryptedCredential
from services.registry.domain.passwords import PasswordCredential, Slot
from services.registry.domain.refusals import HandshakeRefusal
from services.registry.store import status
from services.registry.store.models import (
    CollectorEventRow,
    CollectorPasswordRow,
    CollectorRow,
    CredentialRow,
    HandshakeNonceRow,
    NameConflictRow,
    ServerInstanceRow,
)

EVENTS_LOCK_KEY = 0x6F75_7470_6F73_7401
"""pg_advisory_xact_lock key serialising event writers ("outpost" + 1); database-wide."""
COLLECTORS_LIST = "collectors"


SPOOL_TOTAL_FIELDS = ("batches", "bytes", "dropped_full", "dropped_expired", "dropped_corrupt", "dropped_devices")


class RegistryStore:
    """Opens read and write transactions on the registry's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        async with self._sessions() as session:
            yield Transaction(session)

    @contextlib.asynccontextmanager
    async def write(self, *, exclusive: bool) -> AsyncIterator[Transaction]:
        """A transaction committed on normal exit; `exclusive` ones may append events."""
        serialise = exclusive or self._sqlite
        async with (
            self._write_lock if serialise else contextlib.nullcontext(),
            self._sessions() as session,
            session.begin(),
        ):
            if exclusive and not self._sqlite:
                await session.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENTS_LOCK_KEY)))
            yield Transaction(session)

    async def server_instance(self, now: datetime) -> str:
        """This installation's id, created on first start (callers hold the setup lock)."""
        async with self.write(exclusive=False) as tx:
            found = await tx.session.scalar(sa.select(ServerInstanceRow.id).limit(1))
            if found is not None:
                return str(found)
            new_id = str(uuid.uuid4())
            tx.session.add(ServerInstanceRow(id=new_id, created_at=now))
            return new_id

    async def newest_revision(self) -> int:
        async with self.read() as tx:
            return await tx.newest_revision()

    async def purge_nonces(self, now: datetime) -> int:
        """Forget nonces past their expiry (they are refused as stale by then)."""
        async with self.write(exclusive=False) as tx:
            result = await tx.session.execute(sa.delete(HandshakeNonceRow).where(HandshakeNonceRow.expires_at < now))
            return int(cast(sa.CursorResult[Any], result).rowcount or 0)

    async def events_after(self, revision: int, limit: int) -> list[CollectorEvent]:
        async with self.read() as tx:
            rows = await tx.session.scalars(
                sa.select(CollectorEventRow)
                .where(CollectorEventRow.revision > revision)
                .order_by(CollectorEventRow.revision)
                .limit(limit)
            )
            return [_event(row) for row in rows]

    async def collector_credentials(
        self, *, after_uid: str, limit: int, instance_uids: Iterable[str] = ()
    ) -> tuple[int, list[tuple[Collector, list[PasswordCredential]]]]:
        """Registered collectors after `after_uid` (by instance_uid) with their password
        credentials, and the newest revision before the read (ADR 0034: a gateway's cache)."""
        async with self.read() as tx:
            revision = await tx.newest_revision()
            query = (
                sa.select(CollectorRow)
                .where(CollectorRow.state != CollectorState.PENDING.value, CollectorRow.instance_uid > after_uid)
                .order_by(CollectorRow.instance_uid)
                .limit(limit)
            )
            uids = list(instance_uids)
            if uids:
                query = query.where(CollectorRow.instance_uid.in_(uids))
            found = [_collector(row) for row in await tx.session.scalars(query)]
            by_uid: dict[str, list[PasswordCredential]] = {c.instance_uid: [] for c in found}
            if found:
                rows = await tx.session.scalars(
                    sa.select(CollectorPasswordRow).where(CollectorPasswordRow.instance_uid.in_(list(by_uid)))
                )
                for row in rows:
                    by_uid[row.instance_uid].append(_password(row))
            return revision, [(c, by_uid[c.instance_uid]) for c in found]

    async def count_by_state(self) -> dict[CollectorState, int]:
        async with self.read() as tx:
            result = await tx.session.execute(
                sa.select(CollectorRow.state, sa.func.count()).group_by(CollectorRow.state)
            )
            counts = {state: 0 for state in CollectorState}
            for state, count in result:
                counts[CollectorState(state)] = int(count)
            return counts

    async def spool_totals_by_zone(self) -> dict[str, dict[str, int]]:
        """Per zone, the sums of every collector's spool as it last reported it (metrics).

        The drop counts are each collector's lifetime totals (its spool keeps them across
        restarts), so a sum grows when a collector reports new drops, whether they happened
        in a session or while it could reach no gateway.
        """
        async with self.read() as tx:
            result = await tx.session.execute(
                sa.select(CollectorRow.zone, CollectorRow.spool).where(CollectorRow.spool.is_not(None))
            )
            totals: dict[str, dict[str, int]] = {}
            for zone, spool in result:
                zone_totals = totals.setdefault(zone or "", dict.fromkeys(SPOOL_TOTAL_FIELDS, 0))
                for key in SPOOL_TOTAL_FIELDS:
                    zone_totals[key] += int((spool or {}).get(key, 0) or 0)
            return totals

    async def credential_key_ids(self) -> dict[str, int]:
        """How many credentials are encrypted under each secret key id."""
        async with self.read() as tx:
            result = await tx.session.execute(
                sa.select(CredentialRow.key_id, sa.func.count()).group_by(CredentialRow.key_id)
            )
            return {str(key_id): int(count) for key_id, count in result}

    async def dispose(self) -> None:
        await self.engine.dispose()


class Transaction:
    """The queries one transaction may run; rows go in and out as domain dataclasses."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def use_nonce(self, nonce: bytes, expires_at: datetime) -> bool:
        """Record `nonce` as used; False when it was used before (on any replica).

        In a savepoint of the handshake's own transaction (one commit per handshake, not
        two): the unique key decides, and a failed insert rolls back only the savepoint.
        On PostgreSQL a concurrent insert of the same nonce waits for the first
        transaction and then fails, so exactly one of two simultaneous replays wins.
        """
        try:
            async with self.session.begin_nested():
                self.session.add(HandshakeNonceRow(nonce=nonce.hex(), expires_at=expires_at))
        except sa.exc.IntegrityError:
            return False
        return True

    # --- reading ------------------------------------------------------------------------
    async def newest_revision(self) -> int:
        newest = await self.session.scalar(sa.select(sa.func.max(CollectorEventRow.revision)))
        return int(newest or 0)

    async def collector_by_uid(self, instance_uid: str) -> Collector | None:
        row = await self.session.get(CollectorRow, instance_uid, populate_existing=True)
        return None if row is None else _collector(row)

    async def collector_by_name(self, name: str) -> Collector | None:
        row = await self.session.scalar(sa.select(CollectorRow).where(CollectorRow.name == name))
        return None if row is None else _collector(row)

    async def collectors(self, state: CollectorState | None) -> list[Collector]:
        query = sa.select(CollectorRow).order_by(CollectorRow.name)
        if state is not None:
            query = query.where(CollectorRow.state == state.value)
        return [_collector(row) for row in await self.session.scalars(query)]

    async def collectors_page(
        self, state: CollectorState | None, zone: str | None, page_size: int, page_token: str
    ) -> tuple[list[Collector], str]:
        """A page of collectors by (name, instance_uid) (keyset, outpost.paging) and the next token."""
        size = paging.page_size(page_size)
        filters = {"state": state.value if state else "", "zone": zone}
        order = (CollectorRow.name, CollectorRow.instance_uid)
        query = sa.select(CollectorRow).order_by(*order).limit(size + 1)
        if state is not None:
            query = query.where(CollectorRow.state == state.value)
        if zone is not None:
            query = query.where(CollectorRow.zone == zone)
        if page_token:
            name, uid = paging.decode_token(page_token, COLLECTORS_LIST, filters, (str, str))
            query = query.where(sa.tuple_(*order) > sa.tuple_(sa.literal(name), sa.literal(uid)))
        found = [_collector(row) for row in await self.session.scalars(query)]
        return paging.page_from(found, size, COLLECTORS_LIST, filters, lambda c: (c.name, c.instance_uid))

    async def pending_addresses(self, limit: int) -> list[str]:
        """The last remote address of up to `limit` pending collectors (the pending bounds)."""
        query = sa.select(CollectorRow.remote_address).where(CollectorRow.state == CollectorState.PENDING.value)
        return list(await self.session.scalars(query.limit(limit)))

    async def name_conflicts(self) -> list[NameConflict]:
        rows = await self.session.scalars(
            sa.select(NameConflictRow).order_by(NameConflictRow.name, NameConflictRow.first_seen)
        )
        return [
            NameConflict(
                name=r.name,
                instance_uid=r.instance_uid,
                fingerprint=r.fingerprint,
                held_by_fingerprint=r.held_by_fingerprint,
                remote_address=r.remote_address,
                first_seen=r.first_seen,
                last_seen=r.last_seen,
                attempts=r.attempts,
            )
            for r in rows
        ]

    # --- authentication -----------------------------------------------------------------
    async def insert_collector(self, collector: Collector) -> None:
        values = {f: getattr(collector, f) for f in _COLLECTOR_FIELDS}
        values["state"] = collector.state.value
        values["encryption_public_key"] = collector.encryption_public_key or None
        values["sealing_algorithms"] = list(collector.sealing_algorithms) or None
        values["spool"] = status.spool_json(collector.spool)
        await self.session.execute(sa.insert(CollectorRow).values(**values))

    async def record_connection(self, attempt: AuthAttempt, now: datetime) -> None:
        """An accepted handshake: where the collector is now; pending ones may re-key creds.

        Never its name or zone: those are fixed (`authentication.check_known_identity`).
        """
        hello = attempt.hello
        await self.session.execute(
            sa.update(CollectorRow)
            .where(CollectorRow.instance_uid == hello.instance_uid)
            .values(
                version=hello.version,
                remote_address=attempt.remote_address,
                transport=attempt.transport,
                access_key_id=attempt.access_key_id,
                gateway_id=attempt.gateway_id,
                session_id=attempt.session_id,
                connected=True,
                last_seen=now,
                reported_at=now,
                # A new session: how often it checks in is the gateway's next report.
                check_in_seconds=0,
                # What this version opens: an upgrade gets HPKE, a rollback the legacy algorithm.
                sealing_algorithms=list(hello.sealing_algorithms) or None,
            )
        )
        if hello.spool is not None:
            await self.session.execute(
                sa.update(CollectorRow)
                .where(CollectorRow.instance_uid == hello.instance_uid)
                .values(spool=status.spool_json(hello.spool))
            )
        # Only while pending: after registration the admin-checked credentials are final.
        await self.session.execute(
            sa.update(CollectorRow)
            .where(
                CollectorRow.instance_uid == hello.instance_uid,
                CollectorRow.state == CollectorState.PENDING.value,
            )
            .values(username=hello.username, password_verifier=hello.password_verifier)
        )
        # Once: a collector stored without an encryption key (an older version) may add
        # one; after that `check_known_key` refuses any other.
        if hello.encryption_public_key:
            await self.session.execute(
                sa.update(CollectorRow)
                .where(
                    CollectorRow.instance_uid == hello.instance_uid,
                    CollectorRow.encryption_public_key.is_(None),
                )
                .values(encryption_public_key=hello.encryption_public_key)
            )

    async def replace_key(self, instance_uid: str, old_public_key: bytes, new_public_key: bytes, now: datetime) -> bool:
        """Replace the identity key if it is still `old_public_key` (compare-and-set): False when
        another rotation or a removal got there first, so two rotations never both apply."""
        result = await self.session.execute(
            sa.update(CollectorRow)
            .where(CollectorRow.instance_uid == instance_uid, CollectorRow.public_key == old_public_key)
            .values(public_key=new_public_key, fingerprint=handshake.fingerprint(new_public_key), key_rotated_at=now)
        )
        return cast(sa.CursorResult[Any], result).rowcount == 1

    # --- service password (ADR 0025) ---------------------------------------------------
    async def passwords(self, instance_uid: str) -> list[PasswordCredential]:
        rows = await self.session.scalars(
            sa.select(CollectorPasswordRow).where(CollectorPasswordRow.instance_uid == instance_uid)
        )
        return [_password(row) for row in rows]

    async def replace_passwords(
        self, instance_uid: str, credentials: Iterable[PasswordCredential], *, rotated_at: datetime | None
    ) -> None:
        """Put `credentials` on record instead of what was; blank the verifier (a registered
        collector's is never read again and is password-equivalent); `rotated_at` is set-password's time."""
        await self.session.execute(
            sa.delete(CollectorPasswordRow).where(CollectorPasswordRow.instance_uid == instance_uid)
        )
        for c in credentials:
            await self.session.execute(
                sa.insert(CollectorPasswordRow).values(
                    instance_uid=instance_uid,
                    slot=c.slot.value,
                    salt=c.parameters.salt,
                    memory_kib=c.parameters.memory_kib,
                    time_cost=c.parameters.time_cost,
                    parallelism=c.parameters.parallelism,
                    public_key=c.parameters.public_key,
                    stored_key=c.stored_key,
                    set_at=c.set_at,
                    accepted_until=c.accepted_until,
                )
            )
        values: dict[str, Any] = {"password_verifier": "", "password_last_proved": ""}
        if rotated_at is not None:
            values["password_rotated_at"] = rotated_at
        await self.session.execute(
            sa.update(CollectorRow).where(CollectorRow.instance_uid == instance_uid).values(**values)
        )

    async def adopt_verifier(self, collector: Collector, now: datetime) -> bool:
        """At registration: the hello verifier on record becomes the current credential (ADR 0025).

        False (the verifier kept, no credential) when it does not convert; the collector is
        then authenticated by its key alone until an admin runs set-password.
        """
        credential = passwords.from_verifier(collector.password_verifier, collector.public_key, now)
        if credential is None:
            return False
        await self.replace_passwords(collector.instance_uid, [credential], rotated_at=None)
        return True

    async def password_proved(self, instance_uid: str, slot: Slot, now: datetime) -> None:
        """Record which credential the accepted handshake proved; drop a previous one past its end."""
        await self.session.execute(
            sa.update(CollectorRow)
            .where(CollectorRow.instance_uid == instance_uid, CollectorRow.password_last_proved != slot.value)
            .values(password_last_proved=slot.value)
        )
        await self.session.execute(
            sa.delete(CollectorPasswordRow).where(
                CollectorPasswordRow.instance_uid == instance_uid,
                CollectorPasswordRow.accepted_until.is_not(None),
                CollectorPasswordRow.accepted_until <= now,
            )
        )

    async def record_error(self, instance_uid: str, message: str, now: datetime) -> None:
        await self.session.execute(
            sa.update(CollectorRow)
            .where(CollectorRow.instance_uid == instance_uid)
            .values(last_error=message, last_error_at=now)
        )

    async def record_name_conflict(
        self, attempt: AuthAttempt, fingerprint: str, held_by: Collector, now: datetime
    ) -> None:
        """Upsert by (name, instance_uid); callers hold the exclusive lock, so no race."""
        hello = attempt.hello
        key = (hello.name, hello.instance_uid)
        row = await self.session.get(NameConflictRow, key)
        if row is None:
            self.session.add(
                NameConflictRow(
                    name=hello.name,
                    instance_uid=hello.instance_uid,
                    fingerprint=fingerprint,
                    held_by_fingerprint=held_by.fingerprint,
                    remote_address=attempt.remote_address,
                    first_seen=now,
                    last_seen=now,
                    attempts=1,
                )
            )
            return
        row.fingerprint = fingerprint
        row.held_by_fingerprint = held_by.fingerprint
        row.remote_address = attempt.remote_address
        row.last_seen = now
        row.attempts = row.attempts + 1

    async def clear_name_conflicts(self, instance_uid: str) -> None:
        await self.session.execute(sa.delete(NameConflictRow).where(NameConflictRow.instance_uid == instance_uid))

    # --- status from heartbeats (`store.status`) -----------------------------------------
    async def report_sessions(
        self, gateway_id: str, reports: Iterable[SessionReport], complete: bool, now: datetime
    ) -> None:
        await status.report_sessions(self.session, gateway_id, reports, complete, now)

    async def record_refusal(self, refusal: HandshakeRefusal, now: datetime) -> None:
        await status.record_refusal(self.session, refusal, now)

    async def refusals_for(self, name: str, instance_uid: str | None) -> list[HandshakeRefusal]:
        return await status.refusals_for(self.session, name, instance_uid)

    async def refusal_count(self) -> int:
        return await status.refusal_count(self.session)

    # --- state changes (exclusive transactions only) -------------------------------------
    async def change_state(
        self, collector: Collector, change: StateChange, now: datetime, *, registering: bool
    ) -> Collector:
        """Write `change` and its event; the collector's revision becomes the event's."""
        revision = await self._append_event(EventKind.STATE_CHANGED, collector, change, now)
        values: dict[str, Any] = {
            "state": change.state.value,
            "state_reason": change.reason,
            "state_changed_by": change.changed_by,
            "state_changed_at": now,
            "revision": revision,
        }
        if registering:
            values["registered_at"] = now
        await self.session.execute(
            sa.update(CollectorRow).where(CollectorRow.instance_uid == collector.instance_uid).values(**values)
        )
        return replace(
            collector,
            state=change.state,
            state_reason=change.reason,
            state_changed_by=change.changed_by,
            state_changed_at=now,
            revision=revision,
            registered_at=now if registering else collector.registered_at,
        )

    async def remove(self, collector: Collector, change: StateChange, now: datetime) -> int:
        await self.session.execute(sa.delete(CollectorRow).where(CollectorRow.instance_uid == collector.instance_uid))
        await self.session.execute(
            sa.delete(CollectorPasswordRow).where(CollectorPasswordRow.instance_uid == collector.instance_uid)
        )
        return await self._append_event(EventKind.REMOVED, collector, change, now)

    async def credentials_changed(self, collector: Collector, reason: str, changed_by: str, now: datetime) -> int:
        """Tell gateways that cache this collector's credentials to read them again (ADR 0034).

        Exclusive transactions only, like every event; the collector's revision stays (its
        state did not change)."""
        return await self._append_event(
            EventKind.CREDENTIALS_CHANGED, collector, StateChange(collector.state, reason, changed_by), now
        )

    async def _append_event(self, kind: EventKind, collector: Collector, change: StateChange, now: datetime) -> int:
        result = await self.session.execute(
            sa.insert(CollectorEventRow)
            .values(
                kind=kind.value,
                instance_uid=collector.instance_uid,
                name=collector.name,
                zone=collector.zone,
                state=change.state.value,
                reason=change.reason,
                changed_by=change.changed_by,
                created_at=now,
            )
            .returning(CollectorEventRow.revision)
        )
        return int(result.scalar_one())

    # --- credentials --------------------------------------------------------------------
    async def credential_exists(self, name: str) -> bool:
        found = await self.session.scalar(sa.select(CredentialRow.id).where(CredentialRow.name == name))
        return found is not None

    async def insert_credential(self, credential: EncryptedCredential) -> bool:
        """False when the name is taken (a concurrent create on another replica won).

        The transaction is unusable after False: the caller raises, which rolls it back.
        """
        info = credential.info
        try:
            await self.session.execute(
                sa.insert(CredentialRow).values(
                    name=info.name,
                    type=info.type.value,
                    username=info.username,
                    secret=credential.ciphertext,
                    nonce=credential.nonce,
                    key_id=credential.key_id,
                    created_at=info.created_at,
                    created_by=info.created_by,
                )
            )
        except sa.exc.IntegrityError:
            return False
        return True

    async def credentials(self) -> list[CredentialInfo]:
        rows = await self.session.scalars(sa.select(CredentialRow).order_by(CredentialRow.name))
        return [_credential_info(row) for row in rows]

    async def encrypted_credentials(self, names: Iterable[str]) -> list[EncryptedCredential]:
        rows = await self.session.scalars(sa.select(CredentialRow).where(CredentialRow.name.in_(list(names))))
        return [
            EncryptedCredential(info=_credential_info(r), nonce=r.nonce, ciphertext=r.secret, key_id=r.key_id)
            for r in rows
        ]

    async def delete_credential(self, name: str) -> bool:
        result = await self.session.execute(sa.delete(CredentialRow).where(CredentialRow.name == name))
        return bool(cast(sa.CursorResult[Any], result).rowcount)


_COLLECTOR_FIELDS = (
    "instance_uid",
    "name",
    "zone",
    "version",
    "username",
    "password_verifier",
    "public_key",
    "fingerprint",
    "state_reason",
    "state_changed_by",
    "remote_address",
    "transport",
    "access_key_id",
    "gateway_id",
    "session_id",
    "connected",
    "first_seen",
    "last_seen",
    "registered_at",
    "revision",
    "last_error",
    "last_error_at",
    "state_changed_at",
    "reported_at",
    "clock_skew_ms",
    "check_in_seconds",
    "enrolled_by",
    "key_rotated_at",
    "password_rotated_at",
    "password_last_proved",
)


def _collector(row: CollectorRow) -> Collector:
    values = {f: getattr(row, f) for f in _COLLECTOR_FIELDS}
    return Collector(
        state=CollectorState(row.state),
        encryption_public_key=row.encryption_public_key or b"",
        sealing_algorithms=tuple(row.sealing_algorithms or ()),
        spool=status.spool_from_json(row.spool),
        **values,
    )


def _password(row: CollectorPasswordRow) -> PasswordCredential:
    return PasswordCredential(
        slot=Slot(row.slot),
        parameters=PasswordParameters(row.salt, row.memory_kib, row.time_cost, row.parallelism, row.public_key),
        stored_key=row.stored_key,
        set_at=row.set_at,
        accepted_until=row.accepted_until,
    )


def _credential_info(row: CredentialRow) -> CredentialInfo:
    return CredentialInfo(
        name=row.name,
        type=CredentialType(row.type),
        username=row.username,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _event(row: CollectorEventRow) -> CollectorEvent:
    return CollectorEvent(
        revision=row.revision,
        kind=EventKind(row.kind),
        instance_uid=row.instance_uid,
        name=row.name,
        zone=row.zone,
        state=CollectorState(row.state),
        reason=row.reason,
        changed_by=row.changed_by,
    )
