"""Queries over `admin_tokens`, inside a transaction of `RegistryStore`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from outpost.auth.principals import Role
from services.registry.domain.tokens import AdminToken
from services.registry.store.models import AdminTokenRow


async def insert(session: AsyncSession, token: AdminToken) -> bool:
    """Add `token`; False when its name or digest is taken (nothing written)."""
    try:
        async with session.begin_nested():
            session.add(
                AdminTokenRow(
                    name=token.name,
                    role=token.role.label,
                    digest=token.digest,
                    created_at=token.created_at,
                    created_by=token.created_by,
                    expires_at=token.expires_at,
                    revoked_by="",
                )
            )
    except sa.exc.IntegrityError:
        return False
    return True


async def by_digest(session: AsyncSession, digest: bytes) -> AdminToken | None:
    row = await session.scalar(sa.select(AdminTokenRow).where(AdminTokenRow.digest == digest))
    return None if row is None else _token(row)


async def by_name(session: AsyncSession, name: str) -> AdminToken | None:
    row = await session.get(AdminTokenRow, name, populate_existing=True)
    return None if row is None else _token(row)


async def listed(session: AsyncSession, *, include_revoked: bool) -> list[AdminToken]:
    query = sa.select(AdminTokenRow).order_by(AdminTokenRow.name)
    if not include_revoked:
        query = query.where(AdminTokenRow.revoked_at.is_(None))
    return [_token(row) for row in await session.scalars(query)]


async def any_token(session: AsyncSession) -> bool:
    """Whether any token, in any state, was ever created here."""
    return (await session.scalar(sa.select(AdminTokenRow.name).limit(1))) is not None


async def revoke(session: AsyncSession, name: str, now: datetime, by: str) -> None:
    await session.execute(
        sa.update(AdminTokenRow)
        .where(AdminTokenRow.name == name, AdminTokenRow.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by)
    )


async def touch(session: AsyncSession, name: str, now: datetime) -> None:
    await session.execute(sa.update(AdminTokenRow).where(AdminTokenRow.name == name).values(last_used_at=now))


def _token(row: AdminTokenRow) -> AdminToken:
    return AdminToken(
        name=row.name,
        role=Role.parse(row.role),
        digest=bytes(row.digest),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
    )
