"""What a collector tells about itself as it talks: when it was heard, its clock, its spool, its runs.

The session loop feeds every frame here; the results ride on the hub's `LiveSession`,
from where the session reports (`reports.py`) and lease renewal
(`lease_renewal.py`) read them. Protobuf stops at this edge.
"""

from __future__ import annotations

from outpost.agent.v1 import agent_pb2
from services.gateway.sessions.hub import LiveSession, SpoolStatus


def clock_skew_ms(sent_at_unix_ms: int, now: float) -> int | None:
    """The sender's clock minus ours (`now`, wall seconds); None when it sent no time (0)."""
    if sent_at_unix_ms == 0:
        return None
    return sent_at_unix_ms - int(now * 1000)


def spool_from_proto(spool: agent_pb2.SpoolStatus) -> SpoolStatus:
    return SpoolStatus(
        batches=spool.batches,
        bytes=spool.bytes,
        max_bytes=spool.max_bytes,
        max_age_seconds=spool.max_age_seconds,
        oldest_unix_ms=spool.oldest_unix_ms,
        dropped_full=spool.dropped_full,
        dropped_expired=spool.dropped_expired,
        dropped_corrupt=spool.dropped_corrupt,
        dropped_devices=spool.dropped_devices,
    )


def spool_to_proto(spool: SpoolStatus) -> agent_pb2.SpoolStatus:
    return agent_pb2.SpoolStatus(
        batches=spool.batches,
        bytes=spool.bytes,
        max_bytes=spool.max_bytes,
        max_age_seconds=spool.max_age_seconds,
        oldest_unix_ms=spool.oldest_unix_ms,
        dropped_full=spool.dropped_full,
        dropped_expired=spool.dropped_expired,
        dropped_corrupt=spool.dropped_corrupt,
        dropped_devices=spool.dropped_devices,
    )


def hello_spool(hello: agent_pb2.Hello | None) -> SpoolStatus | None:
    """The spool as the collector opened the session; None from a collector without one."""
    if hello is None or not hello.HasField("spool"):
        return None
    return spool_from_proto(hello.spool)


def heartbeat_heard(live: LiveSession, heartbeat: agent_pb2.Heartbeat) -> None:
    """Record a heartbeat's spool (kept when it carries none) and the runs it lists."""
    if heartbeat.HasField("spool"):
        live.spool = spool_from_proto(heartbeat.spool)
    listed = frozenset(heartbeat.running_job_run_ids)
    live.finished_job_run_ids &= listed  # a run no longer listed needs no memory
    live.running_job_run_ids = listed - live.finished_job_run_ids
