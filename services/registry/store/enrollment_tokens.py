"""Queries over `enrollment_tokens`, inside a transaction of `RegistryStore`.

`consume` is the one that matters for safety: a conditional UPDATE that takes a use only
while the token is still usable (not revoked, not expired, a use left), in the same
transaction that registers the collector. On PostgreSQL a second UPDATE of the same row
waits for the first transaction and then re-reads the row, so of two collectors racing
for the last use exactly one gets rowcount 1; on SQLite writers are serialised.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from outpost.auth import audit
from services.registry.domain.enrollment_tokens import EnrollmentTokenRecord, StoredEnrollmentToken
from services.registry.store.models import AUDIT_EVENTS, CollectorRow, EnrollmentTokenRow


async def insert(session: AsyncSession, token: StoredEnrollmentToken) -> bool:
    """Add `token`; False when its name is held by a live token (nothing written)."""
    record = token.record
    try:
        async with session.begin_nested():
            session.add(
                EnrollmentTokenRow(
                    token_id=record.token_id,
                    name=record.name,
                    zone=record.zone,
                    secret_digest=token.digest,
                    uses_allowed=record.uses_allowed,
                    uses_used=0,
                    cidrs=list(record.cidrs),
                    created_at=record.created_at,
                    created_by=record.created_by,
                    expires_at=record.expires_at,
                    revoked_by="",
                )
            )
    except sa.exc.IntegrityError:
        return False
    return True


async def by_token_id(session: AsyncSession, token_id: str) -> StoredEnrollmentToken | None:
    row = await session.get(EnrollmentTokenRow, token_id, populate_existing=True)
    return None if row is None else StoredEnrollmentToken(record=_record(row), digest=bytes(row.secret_digest))


async def live_by_name(session: AsyncSession, name: str) -> EnrollmentTokenRecord | None:
    row = await session.scalar(
        sa.select(EnrollmentTokenRow).where(EnrollmentTokenRow.name == name, EnrollmentTokenRow.revoked_at.is_(None))
    )
    return None if row is None else _record(row)


async def latest_by_name(session: AsyncSession, name: str) -> EnrollmentTokenRecord | None:
    """The live token named `name`, else the one revoked last (what a repeated revoke shows)."""
    row = await session.scalar(
        sa.select(EnrollmentTokenRow)
        .where(EnrollmentTokenRow.name == name)
        .order_by(EnrollmentTokenRow.revoked_at.is_not(None), EnrollmentTokenRow.revoked_at.desc())
        .limit(1)
    )
    return None if row is None else _record(row)


async def listed(session: AsyncSession, *, include_revoked: bool) -> list[EnrollmentTokenRecord]:
    query = sa.select(EnrollmentTokenRow).order_by(EnrollmentTokenRow.name, EnrollmentTokenRow.created_at)
    if not include_revoked:
        query = query.where(EnrollmentTokenRow.revoked_at.is_(None))
    return [_record(row) for row in await session.scalars(query)]


async def revoke(session: AsyncSession, token_id: str, now: datetime, by: str) -> None:
    await session.execute(
        sa.update(EnrollmentTokenRow)
        .where(EnrollmentTokenRow.token_id == token_id, EnrollmentTokenRow.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
    )


async def consume(session: AsyncSession, token_id: str, now: datetime) -> bool:
    """Take one use of the token if it is usable at `now`; False when it is not (nothing changed)."""
    t = EnrollmentTokenRow
    result = await session.execute(
        sa.update(t)
        .where(
            t.token_id == token_id,
            t.revoked_at.is_(None),
            sa.or_(t.expires_at.is_(None), t.expires_at > now),
            sa.or_(t.uses_allowed == 0, t.uses_used < t.uses_allowed),
        )
        .values(uses_used=t.uses_used + 1)
        .execution_options(synchronize_session=False)
    )
    return cast(sa.CursorResult[Any], result).rowcount == 1


async def record_audit(session: AsyncSession, event: audit.AuditEvent) -> None:
    """An audit row in this transaction: the enrollment and its trail commit together."""
    await session.execute(AUDIT_EVENTS.insert().values(**audit.row_of(event)))


def _record(row: EnrollmentTokenRow) -> EnrollmentTokenRecord:
    return EnrollmentTokenRecord(
        token_id=row.token_id,
        name=row.name,
        zone=row.zone,
        created_at=row.created_at,
        created_by=row.created_by,
        uses_allowed=int(row.uses_allowed),
        uses_used=int(row.uses_used),
        cidrs=tuple(row.cidrs or ()),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


async def mark_enrolled(session: AsyncSession, instance_uid: str, *, zone: str, enrolled_by: str) -> None:
    """A pending collector enrolled by a token: it joins the token's zone, and the row names the token."""
    await session.execute(
        sa.update(CollectorRow)
        .where(CollectorRow.instance_uid == instance_uid)
        .values(zone=zone, enrolled_by=enrolled_by)
    )
