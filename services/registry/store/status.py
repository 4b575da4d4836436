"""Status from heartbeats: gateway session reports, refused handshakes, spool status.

ADR 0010, "Status from heartbeats". Gateways report every live session every half
heartbeat interval with when they last heard from it, its clock skew and its spool;
`report_sessions` applies such a report in a few executemany statements. Refused
handshakes are counted per (name, instance uid, reason) in a bounded table
(`domain.refusals`). `Transaction` in `queries` exposes these to the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from outpost.store_types import UtcDateTime
from services.registry.domain.collectors import SessionReport, SpoolStatus, heard_at
from services.registry.domain.refusals import (
    EXPLAIN_REFUSALS,
    MAX_REFUSALS,
    REFUSAL_RETENTION,
    HandshakeRefusal,
)
from services.registry.store.models import SPOOL_TYPE, CollectorRow, HandshakeRefusalRow

REFUSALS_LOCK_KEY = 0x6F75_7470_6F73_7403
"""pg_advisory_xact_lock key serialising refusal writers ("outpost" + 3): their upsert and
pruning then need no ON CONFLICT and cannot deadlock on each other's deletes."""

_collectors = cast(sa.Table, CollectorRow.__table__)


async def report_sessions(
    session: AsyncSession, gateway_id: str, reports: Iterable[SessionReport], complete: bool, now: datetime
) -> None:
    """Apply one gateway report with a few executemany statements, not a row at a time.

    `last_seen` becomes the time the gateway last heard from the collector, and never
    moves back (reports from two gateways may arrive out of order). Clock skew and
    spool are kept when a report carries none (COALESCE), so an older gateway does not
    erase what a newer one measured.
    """
    c = _collectors
    reports = list(reports)
    heard = sa.bindparam("b_heard", type_=UtcDateTime())
    status: dict[str, Any] = {
        "last_seen": sa.case((c.c.last_seen > heard, c.c.last_seen), else_=heard),
        "clock_skew_ms": sa.func.coalesce(sa.bindparam("b_skew", type_=sa.BigInteger()), c.c.clock_skew_ms),
        "spool": sa.func.coalesce(sa.bindparam("b_spool", type_=SPOOL_TYPE), c.c.spool),
    }
    up = [r for r in reports if r.connected]
    if up:
        # A live session moves the collector here only if it is the session on record,
        # or was heard from at least as recently as the record: a gateway that has not
        # yet noticed an old session died must not pull the collector back from the
        # gateway holding its newer session.
        await session.execute(
            sa.update(c)
            .where(
                c.c.instance_uid == sa.bindparam("b_uid"),
                sa.or_(c.c.session_id == sa.bindparam("b_session"), c.c.last_seen <= heard),
            )
            .values(
                connected=True,
                gateway_id=gateway_id,
                session_id=sa.bindparam("b_session"),
                remote_address=sa.bindparam("b_remote"),
                transport=sa.bindparam("b_transport"),
                check_in_seconds=sa.bindparam("b_check_in"),
                reported_at=now,
                **status,
            ),
            [
                _status_params(r, now)
                | {
                    "b_session": r.session_id,
                    "b_remote": r.remote_address,
                    "b_transport": r.transport,
                    "b_check_in": r.check_in_seconds,
                }
                for r in up
            ],
        )
    # A disconnect only counts for the session it names: the collector may already
    # hold a newer session on another gateway, which must not be clobbered.
    down = [r for r in reports if not r.connected]
    for with_error in (False, True):
        batch = [r for r in down if bool(r.last_error) is with_error]
        if not batch:
            continue
        values: dict[str, Any] = {"connected": False, **status}
        if with_error:
            values |= {"last_error": sa.bindparam("b_error"), "last_error_at": now}
        await session.execute(
            sa.update(c)
            .where(c.c.instance_uid == sa.bindparam("b_uid"), c.c.session_id == sa.bindparam("b_session"))
            .values(**values),
            [
                _status_params(r, now) | {"b_session": r.session_id} | ({"b_error": r.last_error} if with_error else {})
                for r in batch
            ],
        )
    if complete:
        # Every listed live session was just stamped `reported_at = now`; anything else
        # still claimed by this gateway is gone. One statement, no giant NOT IN list.
        await session.execute(
            sa.update(c)
            .where(
                c.c.gateway_id == gateway_id,
                c.c.connected.is_(True),
                sa.or_(c.c.reported_at.is_(None), c.c.reported_at < now),
            )
            .values(connected=False)
        )


def _status_params(report: SessionReport, now: datetime) -> dict[str, Any]:
    return {
        "b_uid": report.instance_uid,
        "b_heard": heard_at(report, now),
        "b_skew": report.clock_skew_ms,
        "b_spool": spool_json(report.spool),
    }


async def record_refusal(session: AsyncSession, refusal: HandshakeRefusal, now: datetime) -> None:
    """Count one refusal on its (name, instance_uid, reason) row; prune when a row is added.

    Only a new row grows the table, so only then are the bounds of `domain.refusals`
    applied: rows older than the retention go, then all but the newest MAX_REFUSALS.
    """
    if session.get_bind().dialect.name != "sqlite":
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(REFUSALS_LOCK_KEY)))
    row = HandshakeRefusalRow
    key = (row.name == refusal.name, row.instance_uid == refusal.instance_uid, row.reason == refusal.reason)
    result = await session.execute(
        sa.update(row)
        .where(*key)
        .values(
            fingerprint=refusal.fingerprint,
            remote_address=refusal.remote_address,
            message=refusal.message,
            last_at=now,
            count=row.count + 1,
        )
    )
    if cast(sa.CursorResult[Any], result).rowcount:
        return
    await session.execute(
        sa.insert(row).values(
            name=refusal.name,
            instance_uid=refusal.instance_uid,
            fingerprint=refusal.fingerprint,
            remote_address=refusal.remote_address,
            reason=refusal.reason,
            message=refusal.message,
            first_at=now,
            last_at=now,
            count=1,
        )
    )
    await session.execute(sa.delete(row).where(row.last_at < now - REFUSAL_RETENTION))
    beyond = sa.select(row.id).order_by(row.last_at.desc(), row.id.desc()).offset(MAX_REFUSALS)
    await session.execute(sa.delete(row).where(row.id.in_(beyond)))


async def refusals_for(session: AsyncSession, name: str, instance_uid: str | None) -> list[HandshakeRefusal]:
    """The newest refusals under `name` or of `instance_uid` (whatever name it used)."""
    row = HandshakeRefusalRow
    match = row.name == name if instance_uid is None else sa.or_(row.name == name, row.instance_uid == instance_uid)
    rows = await session.scalars(
        sa.select(row).where(match).order_by(row.last_at.desc(), row.id.desc()).limit(EXPLAIN_REFUSALS)
    )
    return [
        HandshakeRefusal(
            name=r.name,
            instance_uid=r.instance_uid,
            fingerprint=r.fingerprint,
            remote_address=r.remote_address,
            reason=r.reason,
            message=r.message,
            first_at=r.first_at,
            last_at=r.last_at,
            count=r.count,
        )
        for r in rows
    ]


async def refusal_count(session: AsyncSession) -> int:
    return int(await session.scalar(sa.select(sa.func.count()).select_from(HandshakeRefusalRow)) or 0)


def spool_json(spool: SpoolStatus | None) -> dict[str, int] | None:
    """The spool as stored: the agent protocol's field names, the oldest batch in Unix ms."""
    if spool is None:
        return None
    oldest = 0 if spool.oldest_at is None else int(spool.oldest_at.timestamp() * 1000)
    return {
        "batches": spool.batches,
        "bytes": spool.bytes,
        "max_bytes": spool.max_bytes,
        "max_age_seconds": spool.max_age_seconds,
        "oldest_unix_ms": oldest,
        "dropped_full": spool.dropped_full,
        "dropped_expired": spool.dropped_expired,
        "dropped_corrupt": spool.dropped_corrupt,
        "dropped_devices": spool.dropped_devices,
    }


def spool_from_json(stored: Any) -> SpoolStatus | None:
    """Tolerant: a key a newer replica added is ignored, a missing one reads as 0."""
    if not isinstance(stored, dict):
        return None

    def number(key: str) -> int:
        value = stored.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    oldest = number("oldest_unix_ms")
    return SpoolStatus(
        batches=number("batches"),
        bytes=number("bytes"),
        max_bytes=number("max_bytes"),
        max_age_seconds=number("max_age_seconds"),
        oldest_at=datetime.fromtimestamp(oldest / 1000, UTC) if oldest > 0 else None,
        dropped_full=number("dropped_full"),
        dropped_expired=number("dropped_expired"),
        dropped_corrupt=number("dropped_corrupt"),
        dropped_devices=number("dropped_devices"),
    )
