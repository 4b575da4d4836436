"""Time you can trust (issue 10, item 3): the inventory orders observations by server time.

A collector's times are corrected by the clock skew the gateway measured for its session
and never pass the batch's arrival. These tests inject the skew: a collector one hour ahead
and a correct one alternate over the same host, and nothing freezes or rolls back; only an
observation that really is older (a spooled batch delivered late) is skipped, and listed.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from outpost.agent.v1 import agent_pb2
from services.gateway.inventory.domain.batch import BatchPlan, plan_batch
from services.gateway.inventory.domain.clock import server_time
from services.gateway.inventory.domain.device import DeviceRecord, Sighting
from services.gateway.inventory.from_proto import observations_from_proto, observed_at_from_proto

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
HOUR_MS = 3_600_000


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_a_collector_time_is_corrected_by_the_skew_and_never_passes_the_arrival() -> None:
    received = T0 + timedelta(seconds=10)

    ahead = server_time(ms(T0) + HOUR_MS, clock_skew_ms=HOUR_MS, received_at=received)
    behind = server_time(ms(T0) - HOUR_MS, clock_skew_ms=-HOUR_MS, received_at=received)
    uncorrected = server_time(ms(T0) + HOUR_MS, clock_skew_ms=0, received_at=received)

    assert ahead == behind == T0
    assert uncorrected == received  # bounded: nothing is later than its arrival
    assert server_time(0, clock_skew_ms=HOUR_MS, received_at=received) is None  # not said
    assert server_time(2**62, clock_skew_ms=-(2**62), received_at=received) == received


def test_a_device_time_falls_back_to_the_batch_time_for_old_collectors() -> None:
    received = T0 + timedelta(seconds=10)
    batch = agent_pb2.ResultBatch(
        observed_at_unix_ms=ms(T0) + HOUR_MS,
        devices=[
            agent_pb2.DeviceObservation(ip="10.0.0.1"),
            agent_pb2.DeviceObservation(ip="10.0.0.2", observed_at_unix_ms=ms(T0) + HOUR_MS - 5000),
        ],
    )

    converted = observations_from_proto(batch.devices, clock_skew_ms=HOUR_MS, received_at=received)

    assert observed_at_from_proto(batch, received, HOUR_MS) == T0
    assert [d.observed_at for d in converted.devices] == [None, T0 - timedelta(seconds=5)]


class Inventory:
    """One zone's devices, fed batch by batch as the gateway would: times in server time."""

    def __init__(self) -> None:
        self.devices: list[DeviceRecord] = []
        self.counter = itertools.count(1)

    def ingest(self, run: str, *, collector_ms: int, skew_ms: int, received: datetime, hostname: str) -> BatchPlan:
        device = agent_pb2.DeviceObservation(ip="10.0.0.1", hostname=hostname, observed_at_unix_ms=collector_ms)
        batch = agent_pb2.ResultBatch(job_run_id=run, observed_at_unix_ms=collector_ms, devices=[device])
        observations = observations_from_proto(batch.devices, clock_skew_ms=skew_ms, received_at=received)
        at = observed_at_from_proto(batch, received, skew_ms)
        plan = plan_batch(
            self.devices,
            observations.devices,
            Sighting("lab", "edge", run, at),
            new_id=lambda: f"dev-{next(self.counter)}",
        )
        self.devices = plan.devices or self.devices
        return plan


def test_a_collector_an_hour_ahead_and_a_correct_one_alternate_without_freezing_the_device() -> None:
    inventory = Inventory()
    ahead, correct = HOUR_MS, 0
    names = []
    for minute in range(6):
        now = T0 + timedelta(minutes=minute)
        skew = ahead if minute % 2 == 0 else correct
        plan = inventory.ingest(
            f"run-{minute}", collector_ms=ms(now) + skew, skew_ms=skew, received=now, hostname=f"name-{minute}"
        )
        assert plan.skipped == []
        [device] = inventory.devices
        names.append(device.hostname)
        assert device.last_seen == now  # never an hour in the future, never held back

    assert names == [f"name-{minute}" for minute in range(6)]


def test_a_spooled_batch_delivered_late_is_skipped_and_listed_with_its_times() -> None:
    inventory = Inventory()
    inventory.ingest(
        "run-new", collector_ms=ms(T0) + 120_000, skew_ms=0, received=T0 + timedelta(minutes=2), hostname="new"
    )

    late = inventory.ingest(
        "run-old", collector_ms=ms(T0), skew_ms=0, received=T0 + timedelta(minutes=3), hostname="old"
    )

    [skipped] = late.skipped
    assert (skipped.ip, skipped.observed_at, skipped.last_seen, skipped.last_job_run_id) == (
        "10.0.0.1",
        T0,
        T0 + timedelta(minutes=2),
        "run-new",
    )
    assert late.stale == 1 and late.devices == [] and late.changes == []
    assert inventory.devices[0].hostname == "new"  # nothing rolled back
