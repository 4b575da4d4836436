"""The scheduler's Prometheus metrics (served by `outpost.runtime.start_metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOB_RUNS_CREATED = Counter(
    "outpost_scheduler_job_runs_created_total",
    "Job runs created by this replica, by trigger: schedule or manual.",
    ["trigger"],
)
JOB_RUNS_FINISHED = Counter(
    "outpost_scheduler_job_runs_finished_total",
    "Job runs this replica moved to a final state, by state.",
    ["state"],
)
DUE_RUNS_MISSED = Counter(
    "outpost_scheduler_due_runs_missed_total",
    "Due minutes not turned into runs because no replica was ticking when they fell due.",
)
JOB_RUNS_SUPERSEDED = Counter(
    "outpost_scheduler_job_runs_superseded_total",
    "Waiting runs of a skip schedule cancelled because its next run fell due before anyone claimed them.",
)
LEASES_EXPIRED = Counter(
    "outpost_scheduler_leases_expired_total",
    "Leases of dispatched or running runs this replica found expired, by outcome: requeued or failed.",
    ["outcome"],
)
LEASES_RENEWED = Counter(
    "outpost_scheduler_leases_renewed_total",
    "Holds gateways sent in RenewLeases that this replica renewed.",
)
LEASES_LOST = Counter(
    "outpost_scheduler_leases_lost_total",
    "Holds gateways sent in RenewLeases that were not renewed (run final, requeued or another collector's).",
)
WATCHERS = Gauge("outpost_scheduler_watchers", "Open WatchDispatch streams on this replica.")
TICK_SECONDS = Histogram(
    "outpost_scheduler_tick_seconds",
    "Time one tick took: due schedules turned into runs, then housekeeping.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WRITE_BATCH_CALLS = Histogram(
    "outpost_scheduler_write_batch_calls",
    "Calls (claims, job updates, starts, cancels) decided in one exclusive transaction (ADR 0033).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
WRITE_BATCHES_SPLIT = Counter(
    "outpost_scheduler_write_batches_split_total",
    "Batches whose transaction failed and whose calls were run again one at a time.",
)
