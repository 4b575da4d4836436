"""Admin definitions: discoveries, schedules and settings.

`Catalog` is what the servicer calls for them. Each method validates with `domain`, runs
one transaction, logs the decision, and returns domain dataclasses; it never sees
protobuf. Removing a discovery or schedule cancels its runs still queued (an admin who
removes one does not expect it to run later); runs already dispatched or running carry
on from their snapshot, and an admin cancels those explicitly.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError

from outpost import errors
from services.scheduler import metrics
from services.scheduler.clock import Clock, utc_now
from services.scheduler.domain import discoveries as discovery_rules
from services.scheduler.domain import job_runs as run_rules
from services.scheduler.domain import schedules as schedule_rules
from services.scheduler.domain import settings as settings_rules
from services.scheduler.domain import waiting as waiting_rules
from services.scheduler.domain.discoveries import Discovery
from services.scheduler.domain.schedules import MissedRunPolicy, Schedule
from services.scheduler.domain.settings import Settings
from services.scheduler.registry_client import ListCollectors
from services.scheduler.store.queries import SchedulerStore, Transaction
from services.scheduler.watch import WatchHub

log = structlog.get_logger(__name__)


class Catalog:
    def __init__(
        self,
        store: SchedulerStore,
        hub: WatchHub,
        clock: Clock = utc_now,
        collectors: ListCollectors | None = None,
    ) -> None:
        self._store = store
        self._hub = hub
        self._now = clock
        self._collectors = collectors

    # --- discoveries --------------------------------------------------------------------
    async def create_discovery(self, requested: Discovery, *, allow_unknown: bool = False) -> Discovery:
        """Validate (every limit a collector enforces), check where it runs, store.

        Unless `allow_unknown`, the collector (or zone) must be known to the registry: a
        discovery for a name nobody registered would queue runs nobody ever takes.
        """
        discovery = discovery_rules.validate_discovery(requested, self._now())
        if not allow_unknown:
            await self._check_placement(discovery)
        try:
            async with self._store.write(exclusive=False) as tx:
                if await tx.discovery(discovery.name) is not None:
                    raise _discovery_exists(discovery.name)
                await tx.insert_discovery(discovery)
        except IntegrityError:  # created by a concurrent call after our check
            raise _discovery_exists(discovery.name) from None
        log.info(
            "discovery_created",
            discovery=discovery.name,
            collector=discovery.collector,
            zone=discovery.zone,
            targets=len(discovery.targets),
            allow_unknown=allow_unknown,
        )
        return discovery

    async def _check_placement(self, discovery: Discovery) -> None:
        where = f"collector {discovery.collector!r}" if discovery.collector else f"zone {discovery.zone!r}"
        if self._collectors is None:
            raise errors.FailedPrecondition(
                f"this scheduler has no registry identity (--token-file), so it cannot check {where}; "
                "pass --allow-unknown to create the discovery unchecked"
            )
        try:
            known = await self._collectors()
        except errors.Unavailable as exc:
            raise errors.Unavailable(f"cannot check {where}: {exc}; retry, or pass --allow-unknown") from exc
        problem = waiting_rules.placement_problem(discovery.collector, discovery.zone, known)
        if problem is not None:
            log.info("discovery_refused", discovery=discovery.name, collector=discovery.collector, zone=discovery.zone)
            raise errors.NotFound(f"discovery {discovery.name!r} not created: {problem}")

    async def list_discoveries(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[Discovery], str]:
        """A page of discoveries by name and the next page's token (outpost.paging)."""
        async with self._store.read() as tx:
            return await tx.discoveries_page(page_size, page_token)

    async def get_discovery(self, name: str) -> Discovery:
        name = discovery_rules.validate_name("discovery", name)
        async with self._store.read() as tx:
            found = await tx.discovery(name)
        if found is None:
            raise discovery_rules.not_found(name)
        return found

    async def delete_discovery(self, name: str) -> None:
        """Refused while schedules use it; its queued runs are cancelled."""
        name = discovery_rules.validate_name("discovery", name)
        now = self._now()
        try:
            async with self._store.write(exclusive=True) as tx:
                if await tx.discovery(name) is None:
                    raise discovery_rules.not_found(name)
                using = [s.name for s in await tx.schedules(discovery=name)]
                if using:
                    raise _in_use(name, using)
                queued = await tx.queued_runs(discovery=name)
                revision = await _cancel_queued(tx, queued, f"discovery '{name}' was deleted", now)
                await tx.delete_discovery(name)
        except IntegrityError:  # a schedule for it was created after our check
            raise _in_use(name, ["(one just created)"]) from None
        self._hub.notify(revision)
        log.info("discovery_deleted", discovery=name, queued_runs_cancelled=len(queued))

    # --- schedules ----------------------------------------------------------------------
    async def create_schedule(
        self,
        *,
        name: str,
        discovery: str,
        minute: str,
        hour: str,
        day_of_month: str,
        month: str,
        day_of_week: str,
        timezone: str,
        enabled: bool,
        missed_run_policy: MissedRunPolicy | None,
    ) -> Schedule:
        schedule = schedule_rules.new_schedule(
            name=name,
            discovery=discovery,
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month=month,
            day_of_week=day_of_week,
            timezone=timezone,
            enabled=enabled,
            missed_run_policy=missed_run_policy,
            now=self._now(),
        )
        try:
            async with self._store.write(exclusive=False) as tx:
                if await tx.discovery(schedule.discovery) is None:
                    raise discovery_rules.not_found(schedule.discovery)
                if await tx.schedule(schedule.name) is not None:
                    raise _schedule_exists(schedule.name)
                await tx.insert_schedule(schedule)
        except IntegrityError:  # a concurrent create, or its discovery deleted meanwhile
            raise errors.FailedPrecondition(
                f"schedule '{schedule.name}' was not created: it exists now, or discovery "
                f"'{schedule.discovery}' was just deleted; check and try again"
            ) from None
        log.info(
            "schedule_created",
            schedule=schedule.name,
            discovery=schedule.discovery,
            cron=schedule.cron.expression,
            timezone=schedule.cron.timezone,
            enabled=schedule.enabled,
            next_due_at=schedule.next_due_at.isoformat() if schedule.next_due_at else None,
        )
        return schedule

    async def list_schedules(
        self, *, discovery: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Schedule], str]:
        """A page of schedules by name (of one discovery, if given) and the next page's token."""
        async with self._store.read() as tx:
            return await tx.schedules_page(discovery.strip(), page_size, page_token)

    async def delete_schedule(self, name: str) -> None:
        """Its queued runs are cancelled; runs already taken carry on."""
        name = discovery_rules.validate_name("schedule", name)
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            if await tx.schedule(name) is None:
                raise schedule_rules.not_found(name)
            queued = await tx.queued_runs(schedule=name)
            revision = await _cancel_queued(tx, queued, f"schedule '{name}' was deleted", now)
            await tx.delete_schedule(name)
        self._hub.notify(revision)
        log.info("schedule_deleted", schedule=name, queued_runs_cancelled=len(queued))

    async def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        """Idempotent; enabling starts evaluating now (the disabled time is not back-filled)."""
        name = discovery_rules.validate_name("schedule", name)
        async with self._store.write(exclusive=False) as tx:
            schedule = await tx.schedule(name)
            if schedule is None:
                raise schedule_rules.not_found(name)
            changed = schedule_rules.set_enabled(schedule, enabled, self._now())
            if changed is not None:
                await tx.save_schedule_enabled(changed)
                schedule = changed
        if changed is not None:
            log.info("schedule_enabled" if enabled else "schedule_disabled", schedule=name)
        return schedule

    # --- settings -----------------------------------------------------------------------
    async def get_settings(self) -> Settings:
        async with self._store.read() as tx:
            return await tx.settings()

    async def update_settings(self, requested: Settings, field_names: list[str]) -> Settings:
        """Change the named fields; a change appends a settings event to the dispatch feed."""
        now = self._now()
        async with self._store.write(exclusive=True) as tx:
            current = await tx.settings()
            changed = settings_rules.apply_changes(current, requested, field_names)
            revision = await tx.save_settings(changed, now) if changed != current else 0
        if revision:
            self._hub.notify(revision)
            log.info("settings_updated", **changed.as_values(), revision=revision)
        return changed


async def _cancel_queued(tx: Transaction, queued: list[run_rules.JobRun], reason: str, now: datetime) -> int:
    """Cancel each still-queued run with `reason`; returns the newest event revision (or 0)."""
    revision = 0
    for run in queued:
        if await tx.save_run(run_rules.cancel_by_scheduler(run, reason, now), expected=run):
            revision = await tx.append_run_event(run.id, now)
            metrics.JOB_RUNS_FINISHED.labels(run_rules.JobState.CANCELLED.value).inc()
    return revision


def _in_use(name: str, schedules: list[str]) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        f"discovery '{name}' is used by schedule(s) {', '.join(schedules)}; delete those first"
    )


def _discovery_exists(name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(f"a discovery named '{name}' already exists; pick another name or delete it first")


def _schedule_exists(name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(f"a schedule named '{name}' already exists; pick another name or delete it first")
