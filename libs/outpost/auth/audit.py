"""The audit trail: one row per change made through an admin RPC, kept by the service.

The auth interceptor writes a row after every call of an `audited` rule, whatever its
outcome, with the authenticated principal (never a name the client sent), the peer
address, what the call named and how it ended. Each service keeps its own trail in its
own `audit_events` table (its migrations create it from `define_table`) and serves it
with `AuditService`; `outpostctl audit list` merges the services' trails by time.

The row is written after the change's own transaction: if the database fails between
the two, the change stands and `outpost_audit_write_failures_total` counts the gap (the
service log has the event too). Calls refused for lack of a credential are not rows: a
flood of them would be a flood of writes; they are counted and logged instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import sqlalchemy as sa
import structlog
from google.protobuf.message import Message
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from outpost.audit.v1 import audit_pb2, audit_pb2_grpc

log = structlog.get_logger(__name__)

SERVICE_NAME = "outpost.audit.v1.AuditService"
TABLE = "audit_events"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_TEXT = 512
MAX_DETAIL = 2000

AUDIT_WRITE_FAILURES = Counter(
    "outpost_audit_write_failures_total", "Audit rows that could not be written (the change itself stands)"
)

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    service: str
    method: str
    principal: str
    role: str
    peer: str
    target: str
    outcome: str
    detail: str = ""
    id: int = 0


def define_table(metadata: sa.MetaData) -> sa.Table:
    """The `audit_events` table in a service's metadata (its migration creates the same)."""
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at_unix_ms", sa.BigInteger(), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("method", sa.String(128), nullable=False),
        sa.Column("principal", sa.String(MAX_TEXT), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("peer", sa.String(MAX_TEXT), nullable=False),
        sa.Column("target", sa.String(MAX_TEXT), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def target_of(request: Any) -> str:
    """What a request names: its `name` or `id`, or the `name` of the message it carries."""
    fields = {f.name: f for f in request.DESCRIPTOR.fields}
    for key in ("name", "id"):
        if key in fields and fields[key].type == fields[key].TYPE_STRING:
            return str(getattr(request, key))[:MAX_TEXT]
    if "fields" in fields:  # UpdateSettings names the settings it changes
        return ",".join(request.fields)[:MAX_TEXT]
    for field in request.DESCRIPTOR.fields:
        inner = getattr(request, field.name)
        if isinstance(inner, Message) and "name" in inner.DESCRIPTOR.fields_by_name:
            return str(getattr(inner, "name"))[:MAX_TEXT]  # noqa: B009 (no static attribute)
    return ""


def row_of(event: AuditEvent) -> dict[str, Any]:
    """The `audit_events` row of `event`, texts cut to their columns.

    Also for a service that writes a row inside its own transaction, for a change made
    without an admin call (the registry's enrollment by token, ADR 0022).
    """
    return {
        "at_unix_ms": int(event.at.timestamp() * 1000),
        "service": event.service,
        "method": event.method,
        "principal": event.principal[:MAX_TEXT],
        "role": event.role,
        "peer": event.peer[:MAX_TEXT],
        "target": event.target[:MAX_TEXT],
        "outcome": event.outcome,
        "detail": event.detail[:MAX_DETAIL],
    }


class SqlAuditTrail:
    """Appends and pages a service's `audit_events` rows."""

    def __init__(self, engine: AsyncEngine, table: sa.Table) -> None:
        self._engine = engine
        self._table = table

    async def record(self, event: AuditEvent) -> None:
        row = row_of(event)
        try:
            async with self._engine.begin() as conn:
                await conn.execute(self._table.insert().values(**row))
        except Exception:  # the boundary: the change is done; count and log the missing row
            AUDIT_WRITE_FAILURES.inc()
            log.exception("audit_write_failed", **{k: v for k, v in row.items() if k != "detail"})

    async def page(self, *, limit: int, before_id: int) -> tuple[list[AuditEvent], int]:
        """Newest first; the second value is the `before_id` of the next page (0: none)."""
        t = self._table
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit + 1)
        if before_id:
            query = query.where(t.c.id < before_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        events = [_event(row) for row in rows[:limit]]
        more = len(rows) > limit
        return events, (events[-1].id if more and events else 0)


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=int(row["id"]),
        at=datetime.fromtimestamp(row["at_unix_ms"] / 1000, UTC),
        service=row["service"],
        method=row["method"],
        principal=row["principal"],
        role=row["role"],
        peer=row["peer"],
        target=row["target"],
        outcome=row["outcome"],
        detail=row["detail"],
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """`outpost.audit.v1.AuditService` over one service's trail."""

    def __init__(self, trail: SqlAuditTrail) -> None:
        self._trail = trail

    async def ListAuditEvents(  # noqa: N802 (the generated servicer's name)
        self, request: audit_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListAuditEventsResponse:
        limit = min(request.limit or DEFAULT_PAGE, MAX_PAGE)
        events, next_before = await self._trail.page(limit=limit, before_id=request.before_id)
        response = audit_pb2.ListAuditEventsResponse(next_before_id=next_before)
        for e in events:
            item = response.events.add(
                id=e.id,
                service=e.service,
                method=e.method,
                principal=e.principal,
                role=e.role,
                peer=e.peer,
                target=e.target,
                outcome=e.outcome,
                detail=e.detail,
            )
            item.at.FromDatetime(e.at)
        return response


def add_audit_service(server: grpc.aio.Server, trail: SqlAuditTrail) -> None:
    """Serve the trail as `SERVICE_NAME` (list that name for health and reflection)."""
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(trail), server)
