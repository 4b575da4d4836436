"""Queries over `server_keys`, inside a transaction of `RegistryStore`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.domain.server_keys import ServerKeyState
from services.registry.store.models import ServerKeyRow


@dataclass(frozen=True)
class StoredServerKey:
    """A server key as stored: public half in clear, private half encrypted under the secret key."""

    public_key: bytes
    state: ServerKeyState
    nonce: bytes
    ciphertext: bytes
    encryption_key_id: str
    created_at: datetime
    activated_at: datetime | None

    def __repr__(self) -> str:
        return f"StoredServerKey(state={self.state}, encryption_key_id={self.encryption_key_id!r})"


async def insert(session: AsyncSession, key: StoredServerKey) -> bool:
    """Add `key`; False when a current key exists already (another replica won; nothing written)."""
    try:
        async with session.begin_nested():
            session.add(
                ServerKeyRow(
                    state=key.state.value,
                    public_key=key.public_key,
                    private_key=key.ciphertext,
                    nonce=key.nonce,
                    encryption_key_id=key.encryption_key_id,
                    created_at=key.created_at,
                    activated_at=key.activated_at,
                )
            )
    except sa.exc.IntegrityError:
        return False
    return True


async def accepted(session: AsyncSession) -> list[StoredServerKey]:
    """Every key a gateway may need: current, next and retired (rotation prunes the old ones)."""
    rows = await session.scalars(sa.select(ServerKeyRow).order_by(ServerKeyRow.id))
    return [
        StoredServerKey(
            public_key=bytes(row.public_key),
            state=ServerKeyState(row.state),
            nonce=bytes(row.nonce),
            ciphertext=bytes(row.private_key),
            encryption_key_id=row.encryption_key_id,
            created_at=row.created_at,
            activated_at=row.activated_at,
        )
        for row in rows
    ]


async def delete_unreadable(session: AsyncSession, encryption_key_id: str) -> int:
    """Delete keys encrypted under another secret key; how many were deleted."""
    result = await session.execute(sa.delete(ServerKeyRow).where(ServerKeyRow.encryption_key_id != encryption_key_id))
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)
