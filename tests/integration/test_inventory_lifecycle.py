"""Device lifecycle in the store: a run's end counts missed runs, retires, and a sighting un-retires.

Batches go in through `BatchIngest` with the run's discovery, as a gateway session commits
them; a run's end goes in through `BatchIngest.run_ended`, as the session reports a run the
scheduler recorded as succeeded. Read back through InventoryService.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from outpost.agent.v1 import agent_pb2
from outpost.gateway.v1 import gateway_pb2
from services.gateway.inventory.domain.lifecycle import RetirementRule
from services.gateway.inventory.ingest import BatchIngest
from services.gateway.inventory.store.lifecycle import RunEnd
from tests.integration.test_inventory_support import T0, RunningInventory, batch, device, port, running_inventory

TARGETS = ["10.0.0.0/29"]
A, B, OUTSIDE = "10.0.0.1", "10.0.0.2", "10.0.1.5"


@dataclass
class Lab:
    inventory: RunningInventory
    ingest: BatchIngest
    clock: list[datetime]

    async def run(
        self,
        run_id: str,
        found: Sequence[agent_pb2.DeviceObservation],
        *,
        discovery: str = "net",
        targets: Sequence[str] = TARGETS,
        exclusions: Sequence[str] = (),
    ) -> RunEnd:
        """One successful run: its batch (if it found anything), then its end."""
        self.clock[0] += timedelta(hours=1)
        if found:
            await self.ingest.ingest(
                batch(run_id, 1, found, self.clock[0]),
                instance_uid="uid-1",
                collector="edge-1",
                zone="dmz",
                scanned_ports=[22],
                discovery=discovery,
            )
        return await self.end(run_id, discovery=discovery, targets=targets, exclusions=exclusions)

    async def end(
        self, run_id: str, *, discovery: str = "net", targets: Sequence[str] = TARGETS, exclusions: Sequence[str] = ()
    ) -> RunEnd:
        return await self.ingest.run_ended(
            zone="dmz", discovery=discovery, job_run_id=run_id, targets=targets, exclusions=exclusions
        )

    async def listed(self, include_retired: bool = False) -> dict[str, gateway_pb2.Device]:
        response = await self.inventory.stub.ListDevices(
            gateway_pb2.ListDevicesRequest(include_retired=include_retired)
        )
        return {d.ip: d for d in response.devices}

    async def shown(self, ip: str) -> gateway_pb2.Device:
        return (await self.inventory.device(ip)).device


@asynccontextmanager
async def lab(database_url: str, rule: RetirementRule) -> AsyncIterator[Lab]:
    async with running_inventory(database_url) as inventory:
        clock = [T0]
        yield Lab(inventory, BatchIngest(inventory.store, clock=lambda: clock[0], rule=rule), clock)


def host(ip: str) -> agent_pb2.DeviceObservation:
    return device(ip, port(22, "SSH-2.0-OpenSSH_9.6", "ssh"), hostname=f"h{ip[-1]}.example")


async def test_a_finished_run_counts_the_devices_it_covered_and_did_not_report(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=0)) as world:
        await world.run("run-0", [host(OUTSIDE)], targets=[OUTSIDE])
        assert await world.run("run-1", [host(A), host(B)]) == RunEnd(covered=2, missed=0, retired=0)
        before = await world.shown(B)

        assert await world.run("run-2", [host(A)]) == RunEnd(covered=2, missed=1, retired=0)
        assert await world.end("run-2") == RunEnd(covered=2, missed=0, retired=0)  # reported twice: counted once

        missed = await world.shown(B)
        assert (missed.missed_runs, (await world.shown(A)).missed_runs, (await world.shown(OUTSIDE)).missed_runs) == (
            1,
            0,
            0,
        )
        # A host that did not answer changes nothing but its counter.
        assert (missed.hostname, list(missed.ports), missed.last_seen) == (
            before.hostname,
            list(before.ports),
            before.last_seen,
        )
        assert await world.inventory.history(B) == [("created", "", B, "run-1")]

        await world.run("run-3", [host(A)])
        assert (await world.shown(B)).missed_runs == 2
        await world.run("run-4", [host(A), host(B)])
        assert (await world.shown(B)).missed_runs == 0


async def test_a_device_that_missed_n_runs_is_retired_hidden_and_un_retired_when_seen(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=2)) as world:
        await world.run("run-1", [host(A), host(B)])
        await world.run("run-2", [host(A)])
        assert set(await world.listed()) == {A, B}

        assert await world.run("run-3", [host(A)]) == RunEnd(covered=2, missed=1, retired=1)

        assert set(await world.listed()) == {A}
        retired = (await world.listed(include_retired=True))[B]
        assert (retired.retired, retired.missed_runs, retired.retired_at.ToDatetime().isoformat()) == (
            True,
            2,
            "2026-03-01T11:00:00",
        )
        assert list(retired.ports) and retired.hostname == "h2.example"
        assert await world.inventory.history(B) == [
            ("created", "", B, "run-1"),
            ("retired", "", "missed 2 runs", "run-3"),
        ]
        assert (await world.run("run-4", [host(A)])).retired == 0  # retired once

        await world.run("run-5", [host(A), host(B)])

        back = (await world.listed())[B]
        assert (back.retired, back.missed_runs, back.HasField("retired_at")) == (False, 0, False)
        assert (await world.inventory.history(B))[-1] == ("retired", "missed 2 runs", "", "run-5")


async def test_a_device_another_discovery_still_sees_is_not_missing(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=2)) as world:
        await world.run("sweep-1", [host(B)], discovery="sweep")
        for n in range(1, 5):
            await world.run(f"net-{n}", [host(A)])  # "net" never sees B (say, it drops pings)
            await world.run(f"sweep-{n + 1}", [host(B)], discovery="sweep")

        shown = await world.shown(B)
        assert (shown.missed_runs, shown.retired) == (0, False)

        for n in range(5, 7):
            await world.run(f"net-{n}", [host(A)])
            await world.run(f"sweep-{n + 1}", [], discovery="sweep")
        assert ((await world.shown(B)).missed_runs, (await world.listed(include_retired=True))[B].retired) == (2, True)


async def test_a_discovery_whose_targets_no_longer_cover_a_device_drops_its_count(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=3)) as world:
        await world.run("run-1", [host(A), host(B)])
        await world.run("run-2", [host(A)])
        await world.run("run-3", [host(A)])
        assert (await world.shown(B)).missed_runs == 2

        assert await world.run("run-4", [host(A)], exclusions=[B]) == RunEnd(covered=1, missed=0, retired=0)

        assert ((await world.shown(B)).missed_runs, (await world.shown(B)).retired) == (0, False)


async def test_a_device_not_seen_for_d_days_is_retired_when_a_run_of_its_zone_ends(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=0, days=2)) as world:
        await world.run("run-1", [host(A), host(B)])
        world.clock[0] += timedelta(days=1)
        await world.run("run-2", [host(A)], targets=[A])
        assert not (await world.shown(B)).retired

        world.clock[0] += timedelta(days=1)
        assert (await world.run("run-3", [host(A)], targets=[A])).retired == 1

        assert (await world.inventory.history(B))[-1] == ("retired", "", "not seen for 2 days", "run-3")


async def test_a_run_with_a_host_name_exclusion_counts_nobody_as_missed(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=1)) as world:
        await world.run("run-1", [host(A), host(B)])
        assert await world.run("run-2", [host(A)], exclusions=["db.example"]) == RunEnd(0, 0, 0)
        assert (await world.shown(B)).missed_runs == 0


async def test_a_host_whose_observation_was_skipped_as_stale_still_missed_no_run(database_url: str) -> None:
    async with lab(database_url, RetirementRule(missed_runs=1)) as world:

        async def commit(run_id: str, discovery: str, hours: int, *found: agent_pb2.DeviceObservation) -> int:
            result = await world.ingest.ingest(
                batch(run_id, 1, found, T0 + timedelta(hours=hours)),
                instance_uid="uid-1",
                collector="edge-1",
                zone="dmz",
                scanned_ports=[22],
                discovery=discovery,
            )
            return result.stale

        world.clock[0] = T0 + timedelta(days=1)  # the gateway's now: no observation is in its future
        await commit("net-1", "net", 1, host(A), host(B))
        await world.end("net-1")
        await commit("other-1", "other", 10, host(A))  # newer than what net-2 will say
        assert await commit("net-2", "net", 2, host(A)) == 1  # stale for A: skipped, but A answered
        assert await world.end("net-2") == RunEnd(covered=2, missed=1, retired=1)

        assert ((await world.shown(A)).missed_runs, (await world.shown(A)).retired) == (0, False)
        assert (await world.listed(include_retired=True))[B].retired
