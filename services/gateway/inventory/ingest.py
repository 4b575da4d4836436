"""The session loop's entry to the inventory: one `ResultBatch` in, committed exactly once.

`BatchIngest.commit` fits `services.gateway.sessions.work.Inventory`: it converts the
protobuf at the edge (`from_proto`), commits with `commit_batch`, and answers whether the
batch was new. A failed commit raises a domain error saying what the failure means
(`store.failures`): `errors.Unavailable` (resend later: the caller does not ack, and the
collector's spool sends the batch again; dedup makes that safe) or
`errors.InvalidArgument` (the batch can never be stored). Any other exception is a bug
and propagates as it is. Devices the collector described badly are left out and logged
once per batch, never fatal.

`BatchIngest.run_ended` is the session's entry for a run that ended successfully: the
devices it covered and did not report have missed it, and the retirement rule runs
(`store.lifecycle`, `domain.lifecycle`).

Times are server time: each observation's collector time corrected by the session's
measured `clock_skew_ms` and never later than the batch's arrival (`domain.clock`). An
observation skipped as stale (older than what another run recorded for its device) is
never silent: one `observation_stale` log line each, the
`outpost_gateway_observations_stale_total` counter, and `on_stale(instance_uid,
job_run_id, run_total)`, which app.py wires to the scheduler's `JobRun.observations_stale`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime

import structlog

from outpost import errors
from outpost.agent.v1 import agent_pb2
from services.gateway import metrics
from services.gateway.inventory.domain.lifecycle import RetirementRule
from services.gateway.inventory.domain.run_targets import run_coverage
from services.gateway.inventory.from_proto import observations_from_proto, observed_at_from_proto
from services.gateway.inventory.store.commit import CommitResult, commit_batch
from services.gateway.inventory.store.failures import commit_failure
from services.gateway.inventory.store.lifecycle import RunEnd, record_run_end
from services.gateway.inventory.store.queries import InventoryStore

log = structlog.get_logger(__name__)


StaleCounted = Callable[[str, str, int], None]
"""(collector instance uid, job run id, the run's stale observations so far)."""


class BatchIngest:
    def __init__(
        self,
        store: InventoryStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rule: RetirementRule | None = None,
        on_stale: StaleCounted | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._rule = rule or RetirementRule()
        self._on_stale = on_stale

    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: Collection[int],
        clock_skew_ms: int = 0,
        probes: Collection[str] | None = None,
        discovery: str = "",
    ) -> bool:
        """Commit `batch`; True if it was new, False if it had been committed before."""
        result = await self.ingest(
            batch,
            instance_uid=instance_uid,
            collector=collector,
            zone=zone,
            scanned_ports=scanned_ports,
            clock_skew_ms=clock_skew_ms,
            probes=probes,
            discovery=discovery,
        )
        return not result.duplicate

    async def ingest(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: Collection[int],
        clock_skew_ms: int = 0,
        probes: Collection[str] | None = None,
        discovery: str = "",
    ) -> CommitResult:
        """Commit `batch` and say what it did (devices written, changes recorded, duplicate).

        `clock_skew_ms`: the collector's clock minus ours, as the session measured it.
        Raises `errors.Unavailable` or `errors.InvalidArgument` (see the module docstring).
        """
        now = self._clock()
        observations = observations_from_proto(batch.devices, clock_skew_ms=clock_skew_ms, received_at=now)
        if observations.rejected:
            log.warning(
                "batch_observations_rejected",
                job_run_id=batch.job_run_id,
                sequence=batch.sequence,
                rejected=len(observations.rejected),
                first=observations.rejected[0],
            )
        try:
            result = await commit_batch(
                self._store,
                collector_instance_uid=instance_uid,
                collector_name=collector,
                zone=zone,
                job_run_id=batch.job_run_id,
                attempt=batch.attempt,
                sequence=batch.sequence,
                scanned_ports=scanned_ports,
                observations=observations.devices,
                observed_at=observed_at_from_proto(batch, now, clock_skew_ms),
                now=now,
                probes=probes,
                discovery=discovery,
            )
        except errors.OutpostError:
            raise
        except Exception as exc:
            failure = commit_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        if result.stale:
            self._count_stale(result, batch, instance_uid, collector, clock_skew_ms)
        return result

    def _count_stale(
        self, result: CommitResult, batch: agent_pb2.ResultBatch, instance_uid: str, collector: str, skew_ms: int
    ) -> None:
        # Rare (a late spooled batch): one line per observation is what an operator needs.
        metrics.OBSERVATIONS_STALE.inc(result.stale)
        for skipped in result.skipped:
            log.warning(
                "observation_stale",
                ip=skipped.ip,
                device_id=skipped.device_id,
                job_run_id=batch.job_run_id,
                attempt=batch.attempt,
                sequence=batch.sequence,
                collector=collector,
                observed_at=skipped.observed_at.isoformat(),
                last_seen=skipped.last_seen.isoformat(),
                last_job_run_id=skipped.last_job_run_id,
                clock_skew_ms=skew_ms,
            )
        if self._on_stale is not None:
            self._on_stale(instance_uid, batch.job_run_id, result.run_stale_total)

    async def run_ended(
        self, *, zone: str, discovery: str, job_run_id: str, targets: Sequence[str], exclusions: Sequence[str]
    ) -> RunEnd:
        """A run of `discovery` in `zone` ended successfully: count misses, apply the retirement rule.

        Safe to call more than once for a run. Raises `errors.Unavailable` when the database
        cannot take it now (the caller logs it; the next run's end counts again).
        """
        coverage = run_coverage(targets, exclusions)
        if coverage is None:
            log.warning("run_coverage_unknown", job_run_id=job_run_id, discovery=discovery)
        try:
            ended = await record_run_end(
                self._store,
                zone=zone,
                discovery=discovery,
                job_run_id=job_run_id,
                coverage=coverage,
                rule=self._rule,
                now=self._clock(),
            )
        except Exception as exc:
            failure = commit_failure(exc)
            if failure is None:
                raise
            raise failure from exc
        if ended.missed or ended.retired:
            log.info(
                "run_end_counted",
                job_run_id=job_run_id,
                discovery=discovery,
                covered=ended.covered,
                missed=ended.missed,
                retired=ended.retired,
            )
        return ended
