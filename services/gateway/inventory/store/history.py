"""Pages of one device's history: newest first, keyset on (changed_at, id), opaque tokens.

AIP-158 style: a page token is opaque to clients (base64 of the device id and the last
entry's position) and is only valid with the request that produced it (same device). The
next page starts strictly after that position, so entries recorded meanwhile never shift
a page or repeat an entry: newer entries are ahead of the first page, and an entry a late
batch records with an older `changed_at` lands where it belongs (a client already past that
point does not see it; nothing is skipped or shown twice). The (device_id, changed_at, id)
index serves every page with one range scan, however deep.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from outpost import errors
from services.gateway.inventory.domain.device import Change
from services.gateway.inventory.store.models import device_changes

DEFAULT_PAGE_SIZE = 100
GET_DEVICE_DEFAULT_PAGE_SIZE = 1000
"""GetDevice's page when none is asked for: what it returned before history had pages."""
MAX_PAGE_SIZE = 1000
_TOKEN_VERSION = 1


def page_size(requested: int, default: int) -> int:
    """The page size to use: `default` for 0, at most MAX_PAGE_SIZE (AIP-158 coerces, never fails)."""
    if requested < 0:
        raise errors.InvalidArgument("page size must not be negative")
    return min(requested or default, MAX_PAGE_SIZE)


async def read_page(conn: AsyncConnection, device_id: str, size: int, token: str) -> tuple[list[Change], str]:
    """Up to `size` changes of the device, newest first, after `token`; and the next token."""
    query = (
        sa.select(device_changes)
        .where(device_changes.c.device_id == device_id)
        .order_by(device_changes.c.changed_at.desc(), device_changes.c.id.desc())
        .limit(size + 1)
    )
    if token:
        changed_at, change_id = decode_token(token, device_id)
        query = query.where(
            sa.or_(
                device_changes.c.changed_at < changed_at,
                sa.and_(device_changes.c.changed_at == changed_at, device_changes.c.id < change_id),
            )
        )
    rows = (await conn.execute(query)).mappings().all()
    page = rows[:size]
    next_token = encode_token(device_id, page[-1]["changed_at"], page[-1]["id"]) if len(rows) > size else ""
    return [change_record(row) for row in page], next_token


def encode_token(device_id: str, changed_at: datetime, change_id: int) -> str:
    body = {"v": _TOKEN_VERSION, "d": device_id, "t": changed_at.isoformat(), "i": int(change_id)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, device_id: str) -> tuple[datetime, int]:
    """The position a token names; InvalidArgument for a token not made for this device."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if body["v"] != _TOKEN_VERSION:
            raise ValueError("version")
        changed_at = datetime.fromisoformat(body["t"])
        change_id = int(body["i"])
        owner = str(body["d"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise errors.InvalidArgument("the history page token is not valid; start again without one") from None
    if changed_at.tzinfo is None:
        raise errors.InvalidArgument("the history page token is not valid; start again without one")
    if owner != device_id:
        raise errors.InvalidArgument("the history page token belongs to another device")
    return changed_at, change_id


def change_record(row: sa.RowMapping) -> Change:
    return Change(
        device_id=row["device_id"],
        field=row["field"],
        old_value=row["old_value"],
        new_value=row["new_value"],
        changed_at=row["changed_at"],
        job_run_id=row["job_run_id"],
    )
