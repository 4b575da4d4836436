"""The session loop's entry to the inventory: one `ResultBatch` in, committed exactly once.

`BatchIngest.commit` fits `services.gateway.session_work.Inventory`: it converts the
protobuf at the edge (`from_proto`), commits with `commit_batch`, and answers whether the
batch was new. A failed commit raises a domain error saying what the failure means
(`store.failures`): `errors.Unavailable` (resend later: the caller does not ack, and the
collector's spool sends the batch again; dedup makes that safe) or
`errors.InvalidArgument` (the batch can never be stored). Any other exception is a bug
and propagates as it is. Devices the collector described badly are left out and logged
once per batch, never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime

import structlog

from outpost import errors
from outpost.agent.v1 import agent_pb2
from services.gateway.inventory.from_proto import observations_from_proto, observed_at_from_proto
from services.gateway.inventory.store.commit import CommitResult, commit_batch
from services.gateway.inventory.store.failures import commit_failure
from services.gateway.inventory.store.queries import InventoryStore

log = structlog.get_logger(__name__)


class BatchIngest:
    def __init__(self, store: InventoryStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._clock = clock

    async def commit(
        self,
        batch: agent_pb2.ResultBatch,
        *,
        instance_uid: str,
        collector: str,
        zone: str,
        scanned_ports: Collection[int],
    ) -> bool:
        """Commit `batch`; True if it was new, False if it had been committed before."""
        result = await self.ingest(
            batch, instance_uid=instance_uid, collector=collector, zone=zone, scanned_ports=scanned_ports
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
    ) -> CommitResult:
        """Commit `batch` and say what it did (devices written, changes recorded, duplicate).

        Raises `errors.Unavailable` or `errors.InvalidArgument` (see the module docstring).
        """
        now = self._clock()
        observations = observations_from_proto(batch.devices)
        if observations.rejected:
            log.warning(
                "batch_observations_rejected",
                job_run_id=batch.job_run_id,
                sequence=batch.sequence,
                rejected=len(observations.rejected),
                first=observations.rejected[0],
            )
        try:
            return await commit_batch(
                self._store,
                collector_instance_uid=instance_uid,
                collector_name=collector,
                zone=zone,
                job_run_id=batch.job_run_id,
                attempt=batch.attempt,
                sequence=batch.sequence,
                scanned_ports=scanned_ports,
                observations=observations.devices,
                observed_at=observed_at_from_proto(batch, now),
                now=now,
            )
        except errors.OutpostError:
            raise
        except Exception as exc:
            failure = commit_failure(exc)
            if failure is None:
                raise
            raise failure from exc
