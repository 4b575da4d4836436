"""Pages of one device's history: newest first, keyset on (changed_at, id), opaque tokens.

AIP-158 style, with the tokens of `outpost.paging`: a page token is opaque to clients (the
last entry's position and a digest of the device id) and is only valid with the request
that produced it (same device). The
next page starts strictly after that position, so entries recorded meanwhile never shift
a page or repeat an entry: newer entries are ahead of the first page, and an entry a late
batch records with an older `changed_at` lands where it belongs (a client already past that
point does not see it; nothing is skipped or shown twice). The (device_id, changed_at, id)
index serves every page with one range scan, however deep.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from outpost import paging
from services.gateway.inventory.domain.device import Change
from services.gateway.inventory.store.models import device_changes

DEFAULT_PAGE_SIZE = 100
GET_DEVICE_DEFAULT_PAGE_SIZE = 1000
"""GetDevice's page when none is asked for: what it returned before history had pages."""
MAX_PAGE_SIZE = paging.MAX_PAGE_SIZE
LIST_KIND = "device_history"


def page_size(requested: int, default: int) -> int:
    """The page size to use: `default` for 0, at most MAX_PAGE_SIZE (AIP-158 coerces, never fails)."""
    return paging.page_size(requested, default, MAX_PAGE_SIZE)


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
    return paging.encode_token(LIST_KIND, {"device": device_id}, (changed_at, int(change_id)))


def decode_token(token: str, device_id: str) -> tuple[datetime, int]:
    """The position a token names; InvalidArgument for a token not made for this device."""
    changed_at, change_id = paging.decode_token(token, LIST_KIND, {"device": device_id}, (datetime, int))
    assert isinstance(changed_at, datetime) and isinstance(change_id, int)
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
