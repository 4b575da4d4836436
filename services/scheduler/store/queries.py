"""Queries over the scheduler's tables, grouped into transactions.

Ordering of events (the same reasoning as the registry's). A watcher reads "events with
revision > N" and moves its cursor to the newest it saw; that is only safe if no event
with a *lower* revision can commit later. So every transaction that appends an event is
`exclusive`: on PostgreSQL it takes a transaction-scoped advisory lock before it draws a
revision, which serialises event writers across all scheduler replicas; on SQLite the
database allows one writer at a time and an in-process lock keeps our own writers from
colliding (one process per SQLite file is the embedded mode's rule).

Every change of a run's state appends an event, so it runs exclusive; the conditional
`UPDATE ... WHERE id = ? AND state = ? AND collector_instance_uid = ? AND attempt = ?`
(rowcount decides) is what keeps a decision made on a row from overwriting a change that
committed in between. Reads, admin edits of discoveries and schedules and lease renewals
append nothing and run concurrently (coalesced progress counters append nothing either,
but are decided in the dispatcher's write batches, ADR 0033); that is why taking a
run back from an expired lease also requires the lease to be expired *when it is
written*, so a renewal that committed after the sweep read the row wins.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from outpost import paging
from outpost.db import session_factory
from outpost.store_types import UtcDateTime
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.dispatch import DispatchEvent, EventKind
from services.scheduler.domain.job_runs import ACTIVE_STATES, JobRun, JobState
from services.scheduler.domain.leases import LeaseHold, LostLease, lost_lease
from services.scheduler.domain.schedules import Evaluation, MissedRunPolicy, Schedule
from services.scheduler.domain.settings import Settings
from services.scheduler.store import rows
from services.scheduler.store.models import (
    DiscoveryRow,
    DispatchEventRow,
    JobRunRow,
    ScheduleRow,
    SettingRow,
)

EVENTS_LOCK_KEY = 0x6F75_7470_6F73_7411
"""pg_advisory_xact_lock key serialising the scheduler's event writers ("outpost" + 0x11)."""

RENEW_BATCH = 5000
"""Holds per renewal UPDATE: two bind parameters each, well under PostgreSQL's and SQLite's
32766. A gateway's heartbeat round is one statement unless it holds more runs than this."""

_T = TypeVar("_T")
_schedules = cast(sa.Table, ScheduleRow.__table__)
_runs = cast(sa.Table, JobRunRow.__table__)
_events = cast(sa.Table, DispatchEventRow.__table__)
_ACTIVE = [s.value for s in ACTIVE_STATES]


# Statements of the dispatch path, built once: constructing an UPDATE with a dozen
# conditions and values costs more CPU than executing it (ADR 0033). The bind parameter
# names keep clear of the column names, which an UPDATE reserves for its SET clause.
_RUN_BY_ID = sa.select(_runs).where(_runs.c.id == sa.bindparam("w_id"))
_SAVE_RUN = (
    sa.update(_runs)
    .where(
        _runs.c.id == sa.bindparam("w_id"),
        _runs.c.state == sa.bindparam("w_state"),
        _runs.c.collector_instance_uid == sa.bindparam("w_uid"),
        _runs.c.attempt == sa.bindparam("w_attempt"),
    )
    .values({name: sa.bindparam(f"v_{name}", type_=_runs.c[name].type) for name in rows.RUN_MUTABLE_FIELDS})
)
_SAVE_RUN_IF_LEASE_EXPIRED = _SAVE_RUN.where(
    _runs.c.lease_expires_at <= sa.bindparam("w_expired_by", type_=UtcDateTime())
)

JOB_RUNS_LIST = "job_runs"
DISCOVERIES_LIST = "discoveries"
SCHEDULES_LIST = "schedules"


@dataclass(frozen=True)
class RunFilter:
    """`jobs list` filters; every one given must hold ("" / None: any)."""

    discovery: str = ""
    collector: str = ""
    state: JobState | None = None
    created_since: datetime | None = None

    def digest_fields(self) -> dict[str, Any]:
        """The filters as plain values, for the page token's digest (outpost.paging)."""
        return {
            "discovery": self.discovery,
            "collector": self.collector,
            "state": self.state.value if self.state else "",
            "created_since": self.created_since.isoformat() if self.created_since else "",
        }


class SchedulerStore:
    """Opens read and write transactions on the scheduler's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        async with self._sessions() as session:
            yield Transaction(session, on_sqlite=self._sqlite)

    @contextlib.asynccontextmanager
    async def write(self, *, exclusive: bool) -> AsyncIterator[Transaction]:
        """A transaction committed on normal exit; only `exclusive` ones may append events."""
        serialise = exclusive or self._sqlite
        async with (
            self._write_lock if serialise else contextlib.nullcontext(),
            self._sessions() as session,
            session.begin(),
        ):
            if exclusive and not self._sqlite:
                await session.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENTS_LOCK_KEY)))
            yield Transaction(session, on_sqlite=self._sqlite)

    async def newest_revision(self) -> int:
        async with self.read() as tx:
            newest = await tx.session.scalar(sa.select(sa.func.max(DispatchEventRow.revision)))
            return int(newest or 0)

    async def events_after(self, revision: int, limit: int) -> list[DispatchEvent]:
        """Events after `revision` in order, each with the run's (or settings') current state.

        An event whose run no longer exists comes back without one; the watch skips it.
        """
        async with self.read() as tx:
            # Core rows, not ORM objects: a page of 500 events is read on every wake-up of
            # every watcher, and the ORM's identity map and instrumentation cost more
            # than the read itself.
            result = await tx.session.execute(
                sa.select(_events.c.revision, _events.c.kind, *_runs.c)
                .select_from(_events.outerjoin(_runs, _runs.c.id == _events.c.job_run_id))
                .where(_events.c.revision > revision)
                .order_by(_events.c.revision)
                .limit(limit)
            )
            found = result.all()
            settings = await tx.settings() if any(r.kind == EventKind.SETTINGS for r in found) else None
        return [
            DispatchEvent(
                revision=row.revision,
                kind=EventKind(row.kind),
                job_run=rows.job_run(row) if row.id is not None else None,
                settings=settings if row.kind == EventKind.SETTINGS else None,
            )
            for row in found
        ]

    async def dispose(self) -> None:
        await self.engine.dispose()


class Transaction:
    """The queries one transaction may run; rows go in and out as domain dataclasses."""

    def __init__(self, session: AsyncSession, *, on_sqlite: bool) -> None:
        self.session = session
        self._insert = sqlite.insert if on_sqlite else postgresql.insert
        self.newest_revision = 0
        """The newest revision this transaction appended (0: none)."""

    # --- discoveries --------------------------------------------------------------------
    async def insert_discovery(self, discovery: Discovery) -> None:
        await self.session.execute(sa.insert(DiscoveryRow).values(**rows.discovery_values(discovery)))

    async def discovery(self, name: str) -> Discovery | None:
        row = await self.session.get(DiscoveryRow, name, populate_existing=True)
        return None if row is None else rows.discovery(row)

    async def discoveries(self) -> list[Discovery]:
        found = await self.session.scalars(sa.select(DiscoveryRow).order_by(DiscoveryRow.name))
        return [rows.discovery(row) for row in found]

    async def discoveries_page(self, page_size: int, page_token: str) -> tuple[list[Discovery], str]:
        """A page of discoveries by name (keyset, outpost.paging) and the next page's token."""
        size = paging.page_size(page_size)
        query = sa.select(DiscoveryRow).order_by(DiscoveryRow.name).limit(size + 1)
        if page_token:
            (after,) = paging.decode_token(page_token, DISCOVERIES_LIST, {}, (str,))
            query = query.where(DiscoveryRow.name > after)
        found = [rows.discovery(row) for row in await self.session.scalars(query)]
        return paging.page_from(found, size, DISCOVERIES_LIST, {}, lambda d: (d.name,))

    async def discoveries_named(self, names: Iterable[str]) -> dict[str, Discovery]:
        table = cast(sa.Table, DiscoveryRow.__table__)
        found: dict[str, Discovery] = {}
        for chunk in _chunks(sorted(set(names)), RENEW_BATCH):
            result = await self.session.execute(sa.select(table).where(table.c.name.in_(chunk)))
            found |= {row.name: rows.discovery(row) for row in result}
        return found

    async def delete_discovery(self, name: str) -> bool:
        result = await self.session.execute(sa.delete(DiscoveryRow).where(DiscoveryRow.name == name))
        return _rowcount(result) == 1

    # --- schedules ----------------------------------------------------------------------
    async def insert_schedule(self, schedule: Schedule) -> None:
        await self.session.execute(sa.insert(ScheduleRow).values(**rows.schedule_values(schedule)))

    async def schedule(self, name: str) -> Schedule | None:
        row = await self.session.get(ScheduleRow, name, populate_existing=True)
        return None if row is None else rows.schedule(row)

    async def schedules(self, *, discovery: str = "") -> list[Schedule]:
        query = sa.select(ScheduleRow).order_by(ScheduleRow.name)
        if discovery:
            query = query.where(ScheduleRow.discovery == discovery)
        return [rows.schedule(row) for row in await self.session.scalars(query)]

    async def schedules_page(self, discovery: str, page_size: int, page_token: str) -> tuple[list[Schedule], str]:
        """A page of schedules by name (of one discovery, if given) and the next page's token."""
        size = paging.page_size(page_size)
        filters = {"discovery": discovery}
        query = sa.select(ScheduleRow).order_by(ScheduleRow.name).limit(size + 1)
        if discovery:
            query = query.where(ScheduleRow.discovery == discovery)
        if page_token:
            (after,) = paging.decode_token(page_token, SCHEDULES_LIST, filters, (str,))
            query = query.where(ScheduleRow.name > after)
        found = [rows.schedule(row) for row in await self.session.scalars(query)]
        return paging.page_from(found, size, SCHEDULES_LIST, filters, lambda s: (s.name,))

    async def delete_schedule(self, name: str) -> bool:
        result = await self.session.execute(sa.delete(ScheduleRow).where(ScheduleRow.name == name))
        return _rowcount(result) == 1

    async def save_schedule_enabled(self, schedule: Schedule) -> None:
        await self.session.execute(
            sa.update(ScheduleRow)
            .where(ScheduleRow.name == schedule.name)
            .values(
                enabled=schedule.enabled,
                last_evaluated_at=schedule.last_evaluated_at,
                next_due_at=schedule.next_due_at,
            )
        )

    async def due_schedules(self, now: datetime) -> list[Schedule]:
        query = (
            sa.select(ScheduleRow)
            .where(ScheduleRow.enabled.is_(True), ScheduleRow.next_due_at <= now)
            .order_by(ScheduleRow.next_due_at, ScheduleRow.name)
        )
        return [rows.schedule(row) for row in await self.session.scalars(query)]

    async def soonest_due_after(self, now: datetime) -> datetime | None:
        """The soonest `next_due_at` of an enabled schedule still ahead of `now` (an index read)."""
        soonest: datetime | None = await self.session.scalar(
            sa.select(sa.func.min(ScheduleRow.next_due_at)).where(
                ScheduleRow.enabled.is_(True), ScheduleRow.next_due_at > now
            )
        )
        return soonest

    async def enabled_schedule_names(self, names: Iterable[str]) -> set[str]:
        wanted = sorted(set(names))
        found = await self.session.scalars(
            sa.select(ScheduleRow.name).where(ScheduleRow.name.in_(wanted), ScheduleRow.enabled.is_(True))
        )
        return set(found)

    async def record_evaluations(self, evaluations: Sequence[Evaluation]) -> None:
        """Move each cursor forward (never back: another replica may be ahead of us)."""
        if not evaluations:
            return
        at = sa.bindparam("b_at", type_=UtcDateTime())
        await self.session.execute(
            sa.update(_schedules)
            .where(
                _schedules.c.name == sa.bindparam("b_name"),
                _schedules.c.enabled.is_(True),
                _schedules.c.last_evaluated_at < at,
            )
            .values(last_evaluated_at=at, next_due_at=sa.bindparam("b_next", type_=UtcDateTime())),
            [{"b_name": e.schedule, "b_at": e.evaluated_at, "b_next": e.next_due_at} for e in evaluations],
        )
        due = [e for e in evaluations if e.due_at is not None]
        if not due:
            return
        due_at = sa.bindparam("b_due", type_=UtcDateTime())
        await self.session.execute(
            sa.update(_schedules)
            .where(
                _schedules.c.name == sa.bindparam("b_name"),
                sa.or_(_schedules.c.last_due_at.is_(None), _schedules.c.last_due_at < due_at),
            )
            .values(last_due_at=due_at),
            [{"b_name": e.schedule, "b_due": e.due_at} for e in due],
        )

    async def missed_run_policies(self, names: Iterable[str]) -> dict[str, MissedRunPolicy]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        result = await self.session.execute(
            sa.select(ScheduleRow.name, ScheduleRow.missed_run_policy).where(ScheduleRow.name.in_(wanted))
        )
        return {name: MissedRunPolicy(policy) for name, policy in result}

    # --- job runs -----------------------------------------------------------------------
    async def insert_run(self, run: JobRun) -> None:
        await self.session.execute(sa.insert(JobRunRow).values(**rows.run_values(run)))

    async def insert_due_runs(self, runs: Sequence[JobRun]) -> set[str]:
        """Insert scheduled runs unless their (schedule, due minute) exists; the ids inserted."""
        if not runs:
            return set()
        # One statement executed with many parameter sets: SQLAlchemy sends them as
        # multi-row INSERTs ("insertmanyvalues") from one cached compilation. A
        # `.values([...])` of 1,000 rows is compiled anew each time (~2 ms per row).
        statement = (
            self._insert(_runs).on_conflict_do_nothing(index_elements=["schedule_name", "due_at"]).returning(_runs.c.id)
        )
        result = await self.session.execute(statement, [rows.run_values(run) for run in runs])
        return set(result.scalars().all())

    async def job_run(self, run_id: str) -> JobRun | None:
        row = (await self.session.execute(_RUN_BY_ID, {"w_id": run_id})).first()
        return None if row is None else rows.job_run(row)

    async def job_runs(self, where: RunFilter, page_size: int, page_token: str = "") -> tuple[list[JobRun], str]:
        """A page of runs newest first, (created_at, id) descending (keyset), and the next token.

        Runs created while a client pages are newer than its position: it does not see them
        (they are ahead of its first page), and none it would have seen shifts.
        """
        size = paging.page_size(page_size)
        filters = where.digest_fields()
        order = (JobRunRow.created_at, JobRunRow.id)
        query = sa.select(JobRunRow).order_by(*(column.desc() for column in order)).limit(size + 1)
        if page_token:
            created_at, run_id = paging.decode_token(page_token, JOB_RUNS_LIST, filters, (datetime, str))
            query = query.where(
                sa.tuple_(*order)
                < sa.tuple_(sa.literal(created_at, JobRunRow.created_at.type), sa.literal(run_id, JobRunRow.id.type))
            )
        if where.created_since is not None:
            query = query.where(JobRunRow.created_at >= where.created_since)
        if where.discovery:
            query = query.where(JobRunRow.discovery == where.discovery)
        if where.collector:
            query = query.where(
                sa.or_(JobRunRow.collector == where.collector, JobRunRow.target_collector == where.collector)
            )
        if where.state is not None:
            query = query.where(JobRunRow.state == where.state.value)
        found = [rows.job_run(row) for row in await self.session.scalars(query)]
        return paging.page_from(found, size, JOB_RUNS_LIST, filters, lambda run: (run.created_at, run.id))

    async def queued_for(self, collector: str, zone: str) -> list[JobRun]:
        """Queued runs aimed at this collector by name or at its zone, oldest first."""
        query = (
            sa.select(JobRunRow)
            .where(JobRunRow.state == JobState.QUEUED.value, _aimed_at(collector, zone))
            .order_by(JobRunRow.due_at, JobRunRow.created_at, JobRunRow.id)
        )
        return [rows.job_run(row) for row in await self.session.scalars(query)]

    async def queued_for_any(self, collectors: Iterable[str], zones: Iterable[str]) -> list[JobRun]:
        """Queued runs aimed at any of these collectors (by name) or zones, oldest first."""
        aimed = _aimed_at_any(collectors, zones)
        query = (
            sa.select(_runs)
            .where(_runs.c.state == JobState.QUEUED.value, aimed)
            .order_by(_runs.c.due_at, _runs.c.created_at, _runs.c.id)
        )
        return [rows.job_run(row) for row in await self.session.execute(query)]

    async def queued_targets_among(self, collectors: Iterable[str], zones: Iterable[str]) -> set[tuple[str, str]]:
        """The (target collector, target zone) pairs of queued runs aimed at these collectors or zones."""
        result = await self.session.execute(
            sa.select(_runs.c.target_collector, _runs.c.target_zone)
            .where(_runs.c.state == JobState.QUEUED.value, _aimed_at_any(collectors, zones))
            .distinct()
        )
        return {(collector, zone) for collector, zone in result}

    async def active_counts_of(self, collectors: Iterable[str]) -> dict[str, int]:
        """Runs dispatched or running of each of these collectors (absent: none)."""
        wanted = sorted(set(collectors))
        found: dict[str, int] = {}
        for chunk in _chunks(wanted, RENEW_BATCH):
            result = await self.session.execute(
                sa.select(_runs.c.collector, sa.func.count())
                .where(_runs.c.collector.in_(chunk), _runs.c.state.in_(_ACTIVE))
                .group_by(_runs.c.collector)
            )
            found |= {collector: int(count) for collector, count in result}
        return found

    async def any_queued_for(self, collector: str, zone: str) -> bool:
        found = await self.session.scalar(
            sa.select(JobRunRow.id).where(JobRunRow.state == JobState.QUEUED.value, _aimed_at(collector, zone)).limit(1)
        )
        return found is not None

    async def active_count(self, collector: str) -> int:
        count = await self.session.scalar(
            sa.select(sa.func.count())
            .select_from(JobRunRow)
            .where(JobRunRow.collector == collector, JobRunRow.state.in_([s.value for s in ACTIVE_STATES]))
        )
        return int(count or 0)

    async def queued_targets(self) -> list[tuple[str, str]]:
        """Each distinct (target collector, target zone) that queued runs wait for."""
        result = await self.session.execute(
            sa.select(JobRunRow.target_collector, JobRunRow.target_zone)
            .where(JobRunRow.state == JobState.QUEUED.value)
            .distinct()
        )
        return [(collector, zone) for collector, zone in result.all()]

    async def active_counts(self) -> dict[str, int]:
        """Runs dispatched or running, per collector name."""
        result = await self.session.execute(
            sa.select(JobRunRow.collector, sa.func.count())
            .where(JobRunRow.state.in_(_ACTIVE))
            .group_by(JobRunRow.collector)
        )
        return {collector: int(count) for collector, count in result.all()}

    async def save_waiting_reason(self, collector: str, zone: str, reason: str, cause: str) -> int:
        """Set the reason of every queued run aimed at exactly this target; runs changed."""
        result = await self.session.execute(
            sa.update(JobRunRow)
            .where(
                JobRunRow.state == JobState.QUEUED.value,
                JobRunRow.target_collector == collector,
                JobRunRow.target_zone == zone,
                sa.or_(JobRunRow.waiting_reason != reason, JobRunRow.waiting_cause != cause),
            )
            .values(waiting_reason=reason, waiting_cause=cause)
        )
        return _rowcount(result)

    async def queued_runs(self, *, discovery: str = "", schedule: str = "") -> list[JobRun]:
        query = sa.select(JobRunRow).where(JobRunRow.state == JobState.QUEUED.value)
        if discovery:
            query = query.where(JobRunRow.discovery == discovery)
        if schedule:
            query = query.where(JobRunRow.schedule_name == schedule)
        return [rows.job_run(row) for row in await self.session.scalars(query.order_by(JobRunRow.due_at))]

    async def queued_runs_of_schedules(self, names: Sequence[str]) -> dict[str, list[JobRun]]:
        """Queued runs of each of these schedules, oldest due first (schedules without any: absent)."""
        found: dict[str, list[JobRun]] = {}
        for chunk in _chunks(sorted(set(names)), RENEW_BATCH):
            query = (
                sa.select(_runs)
                .where(_runs.c.state == JobState.QUEUED.value, _runs.c.schedule_name.in_(chunk))
                .order_by(_runs.c.schedule_name, _runs.c.due_at)
            )
            for row in await self.session.execute(query):
                found.setdefault(row.schedule_name, []).append(rows.job_run(row))
        return found

    async def expired_leases(self, now: datetime, limit: int) -> list[JobRun]:
        """Dispatched or running runs whose lease ran out by `now`, longest expired first."""
        query = (
            sa.select(JobRunRow)
            .where(JobRunRow.lease_expires_at <= now, JobRunRow.state.in_(_ACTIVE))
            .order_by(JobRunRow.lease_expires_at, JobRunRow.id)
            .limit(limit)
        )
        return [rows.job_run(row) for row in await self.session.scalars(query)]

    async def job_runs_by_id(self, run_ids: Iterable[str]) -> dict[str, JobRun]:
        wanted = sorted(set(run_ids))
        found: dict[str, JobRun] = {}
        for chunk in _chunks(wanted, RENEW_BATCH):
            query = sa.select(JobRunRow).where(JobRunRow.id.in_(chunk)).execution_options(populate_existing=True)
            found |= {row.id: rows.job_run(row) for row in await self.session.scalars(query)}
        return found

    async def renew_leases(self, holds: Sequence[LeaseHold], until: datetime) -> list[LostLease]:
        """Extend to `until` the lease of every hold on an active run held by that instance.

        One UPDATE for all holds (per `RENEW_BATCH`), matching `(id, collector_instance_uid)`
        pairs on dispatched or running runs; RETURNING says which matched. The holds that
        did not are read back and come out as lost, with the reason `domain.leases` gives.
        """
        renewed: set[tuple[str, str]] = set()
        for chunk in _chunks(holds, RENEW_BATCH):
            pairs = [(h.job_run_id, h.collector_instance_uid) for h in chunk]
            result = await self.session.execute(
                sa.update(JobRunRow)
                .where(
                    sa.tuple_(JobRunRow.id, JobRunRow.collector_instance_uid).in_(pairs),
                    JobRunRow.state.in_(_ACTIVE),
                )
                .values(lease_expires_at=until)
                .returning(JobRunRow.id, JobRunRow.collector_instance_uid)
                .execution_options(synchronize_session=False)
            )
            renewed.update((run_id, uid) for run_id, uid in result)
        missing = [h for h in holds if (h.job_run_id, h.collector_instance_uid) not in renewed]
        if not missing:
            return []
        runs = await self.job_runs_by_id(h.job_run_id for h in missing)
        return [lost for h in missing if (lost := lost_lease(h, runs.get(h.job_run_id))) is not None]

    async def overdue_runs(self, deadline_before: datetime) -> list[JobRun]:
        query = sa.select(JobRunRow).where(
            JobRunRow.state == JobState.RUNNING.value, JobRunRow.deadline_at < deadline_before
        )
        return [rows.job_run(row) for row in await self.session.scalars(query.order_by(JobRunRow.deadline_at))]

    async def save_run(self, run: JobRun, *, expected: JobRun, lease_expired_by: datetime | None = None) -> bool:
        """Write `run`'s state if the row is still in `expected`'s state, hands and attempt.

        `lease_expired_by`: write only if the lease is still expired at that time, i.e. no
        renewal committed since `expected` was read (renewals take no event lock).
        """
        params = {f"v_{name}": value for name, value in rows.changed_run_values(run).items()}
        params |= {
            "w_id": run.id,
            "w_state": expected.state.value,
            "w_uid": expected.collector_instance_uid,
            "w_attempt": expected.attempt,
        }
        statement = _SAVE_RUN
        if lease_expired_by is not None:
            statement = _SAVE_RUN_IF_LEASE_EXPIRED
            params["w_expired_by"] = lease_expired_by
        result = await self.session.execute(statement, params)
        return _rowcount(result) == 1

    async def record_stale_observations(self, run_id: str, total: int) -> bool:
        """Raise the run's stale-observation count to `total` (never lower it); False if no such run.

        One statement of its own, not part of `save_run`: the count is the gateway's, may
        arrive in any state (a spooled batch after the run ended), and a total reported
        twice or out of order must not lower it.
        """
        column = JobRunRow.observations_stale
        result = await self.session.execute(
            sa.update(JobRunRow)
            .where(JobRunRow.id == run_id)
            .values(observations_stale=sa.case((column < total, total), else_=column))
        )
        return _rowcount(result) == 1

    async def append_run_event(self, run_id: str, now: datetime) -> int:
        """Exclusive transactions only: the run changed; watchers will read its current state."""
        return await self.append_run_events([run_id], now)

    async def append_run_events(self, run_ids: Sequence[str], now: datetime) -> int:
        """One event per run, in order; returns the newest revision (0 for none)."""
        if not run_ids:
            return 0
        for chunk in _chunks(run_ids, RENEW_BATCH):
            await self.session.execute(
                sa.update(_runs)
                .where(_runs.c.id.in_(chunk))
                .values(last_event_at=now)
                .execution_options(synchronize_session=False)
            )
        # Many parameter sets, one cached statement (see `insert_due_runs`); revisions are
        # drawn in order under the event lock.
        result = await self.session.execute(
            sa.insert(_events).returning(_events.c.revision),
            [{"kind": EventKind.JOB_RUN.value, "job_run_id": i, "created_at": now} for i in run_ids],
        )
        newest = max(int(r) for r in result.scalars().all())
        self.newest_revision = max(self.newest_revision, newest)
        return newest

    # --- settings -----------------------------------------------------------------------
    async def settings(self) -> Settings:
        result = await self.session.execute(sa.select(SettingRow.key, SettingRow.value))
        return Settings.from_values({key: value for key, value in result})

    async def save_settings(self, settings: Settings, now: datetime) -> int:
        """Exclusive transactions only: upsert every value and append a settings event."""
        for key, value in settings.as_values().items():
            statement = self._insert(SettingRow).values(key=key, value=value, updated_at=now)
            await self.session.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": now})
            )
        return await self._append_event(EventKind.SETTINGS, "", now)

    async def _append_event(self, kind: EventKind, run_id: str, now: datetime) -> int:
        result = await self.session.execute(
            sa.insert(DispatchEventRow)
            .values(kind=kind.value, job_run_id=run_id, created_at=now)
            .returning(DispatchEventRow.revision)
        )
        revision = int(result.scalar_one())
        self.newest_revision = max(self.newest_revision, revision)
        return revision


def _aimed_at(collector: str, zone: str) -> sa.ColumnElement[bool]:
    """By name, or by zone; an empty name or zone matches nothing (not "every run")."""
    clauses = []
    if collector:
        clauses.append(JobRunRow.target_collector == collector)
    if zone:
        clauses.append(JobRunRow.target_zone == zone)
    return sa.or_(*clauses) if clauses else sa.false()


def _aimed_at_any(collectors: Iterable[str], zones: Iterable[str]) -> sa.ColumnElement[bool]:
    """`_aimed_at` for many claimers at once; empty names and zones match nothing."""
    names = sorted({c for c in collectors if c})
    places = sorted({z for z in zones if z})
    clauses = []
    if names:
        clauses.append(_runs.c.target_collector.in_(names))
    if places:
        clauses.append(_runs.c.target_zone.in_(places))
    return sa.or_(*clauses) if clauses else sa.false()


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
