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
    retires_at: datetime | None = None

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
                    retires_at=key.retires_at,
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
            retires_at=row.retires_at,
        )
        for row in rows
    ]


async def set_retires_at(session: AsyncSession, public_key: bytes, retires_at: datetime) -> None:
    """Give a key the end of its acceptance (its successor was announced)."""
    await session.execute(
        sa.update(ServerKeyRow).where(ServerKeyRow.public_key == public_key).values(retires_at=retires_at)
    )


async def write_states(session: AsyncSession, states: dict[bytes, ServerKeyState], now: datetime) -> None:
    """Store the states time has given the keys (`domain.server_keys.effective`).

    The old current key is demoted before the new one is promoted, so the index that
    allows one current row holds at every statement; keys missing from `states` are no
    longer accepted and are marked retired.
    """
    rows = list(await session.scalars(sa.select(ServerKeyRow).order_by(ServerKeyRow.id)))
    for row in sorted(rows, key=lambda r: states.get(bytes(r.public_key)) is ServerKeyState.CURRENT):
        state = states.get(bytes(row.public_key), ServerKeyState.RETIRED)
        if row.state != state.value:
            if state is ServerKeyState.RETIRED and row.retired_at is None:
                row.retired_at = now
            row.state = state.value
            await session.flush()


async def delete_unreadable(session: AsyncSession, encryption_key_id: str) -> int:
    """Delete keys encrypted under another secret key; how many were deleted."""
    result = await session.execute(sa.delete(ServerKeyRow).where(ServerKeyRow.encryption_key_id != encryption_key_id))
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)
