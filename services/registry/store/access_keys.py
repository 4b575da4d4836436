"""Queries over `access_keys`, inside a transaction of `RegistryStore`.

Revisions. Each change gives the row `max(revision) + 1`. Callers run these writes in an
`exclusive` transaction (`store.queries` explains the lock), so revisions are drawn and
committed in one order: a watcher that saw revision N never later finds a lower one
committed. The unique constraint on `revision` guards that rule if a caller forgets.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.access_keys import AccessKeyRecord, StoredAccessKey
from services.registry.store.models import AccessKeyRow


async def next_revision(session: AsyncSession) -> int:
    newest = await session.scalar(sa.select(sa.func.max(AccessKeyRow.revision)))
    return int(newest or 0) + 1


async def newest_revision(session: AsyncSession) -> int:
    return int(await session.scalar(sa.select(sa.func.max(AccessKeyRow.revision))) or 0)


async def insert(session: AsyncSession, key: StoredAccessKey) -> bool:
    """Add `key` with the next revision; False when its name is held by a live key (nothing written)."""
    record = key.record
    try:
        async with session.begin_nested():
            session.add(
                AccessKeyRow(
                    key_id=record.key_id,
                    name=record.name,
                    zone=record.zone,
                    secret=key.ciphertext,
                    nonce=key.nonce,
                    encryption_key_id=key.encryption_key_id,
                    created_at=record.created_at,
                    created_by=record.created_by,
                    expires_at=record.expires_at,
                    revoked_by="",
                    revision=await next_revision(session),
                )
            )
    except sa.exc.IntegrityError:
        return False
    return True


async def live_by_name(session: AsyncSession, name: str) -> AccessKeyRecord | None:
    """The key named `name` that is neither revoked nor replaced (at most one)."""
    row = await session.scalar(
        sa.select(AccessKeyRow).where(
            AccessKeyRow.name == name, AccessKeyRow.revoked_at.is_(None), AccessKeyRow.replaced_by.is_(None)
        )
    )
    return None if row is None else _record(row)


async def live_key_ids(session: AsyncSession, name: str) -> list[str]:
    """Every unrevoked key of `name`: the current one and any replaced one still in its overlap."""
    return list(
        await session.scalars(
            sa.select(AccessKeyRow.key_id).where(AccessKeyRow.name == name, AccessKeyRow.revoked_at.is_(None))
        )
    )


async def mark_replaced(session: AsyncSession, key_id: str, by_key_id: str, expires_at: datetime) -> None:
    """Record that `by_key_id` replaced `key_id`, valid until `expires_at`; a new revision tells gateways."""
    revision = await next_revision(session)
    await session.execute(
        sa.update(AccessKeyRow)
        .where(AccessKeyRow.key_id == key_id)
        .values(replaced_by=by_key_id, expires_at=expires_at, revision=revision)
    )


async def latest_by_name(session: AsyncSession, name: str) -> AccessKeyRecord | None:
    """The live key named `name`, else the one revoked last (what a repeated revoke shows)."""
    row = await session.scalar(
        sa.select(AccessKeyRow)
        .where(AccessKeyRow.name == name)
        .order_by(
            AccessKeyRow.revoked_at.is_not(None), AccessKeyRow.replaced_by.is_not(None), AccessKeyRow.revision.desc()
        )
        .limit(1)
    )
    return None if row is None else _record(row)


async def listed(session: AsyncSession, *, include_revoked: bool) -> list[AccessKeyRecord]:
    query = sa.select(AccessKeyRow).order_by(AccessKeyRow.name, AccessKeyRow.created_at)
    if not include_revoked:
        query = query.where(AccessKeyRow.revoked_at.is_(None))
    return [_record(row) for row in await session.scalars(query)]


async def any_key(session: AsyncSession) -> bool:
    """Whether any access key, in any state, was ever created here."""
    return (await session.scalar(sa.select(AccessKeyRow.key_id).limit(1))) is not None


async def by_key_id(session: AsyncSession, key_id: str) -> StoredAccessKey | None:
    row = await session.get(AccessKeyRow, key_id, populate_existing=True)
    return None if row is None else _stored(row)


async def revoke(session: AsyncSession, key_id: str, now: datetime, by: str) -> None:
    revision = await next_revision(session)
    await session.execute(
        sa.update(AccessKeyRow)
        .where(AccessKeyRow.key_id == key_id, AccessKeyRow.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by, revision=revision)
    )


async def changed_after(session: AsyncSession, revision: int, limit: int) -> list[StoredAccessKey]:
    """Keys whose latest change is after `revision`, oldest change first (the watch's pages)."""
    rows = await session.scalars(
        sa.select(AccessKeyRow).where(AccessKeyRow.revision > revision).order_by(AccessKeyRow.revision).limit(limit)
    )
    return [_stored(row) for row in rows]


def _record(row: AccessKeyRow) -> AccessKeyRecord:
    return AccessKeyRecord(
        key_id=row.key_id,
        name=row.name,
        zone=row.zone,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revision=int(row.revision),
        replaced_by=row.replaced_by,
    )


def _stored(row: AccessKeyRow) -> StoredAccessKey:
    return StoredAccessKey(
        record=_record(row),
        nonce=bytes(row.nonce),
        ciphertext=bytes(row.secret),
        encryption_key_id=row.encryption_key_id,
    )
