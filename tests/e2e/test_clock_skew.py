"""Time you can trust, end to end (issue 10, item 3): collectors whose clocks are an hour ahead
and an hour behind (the `--clock-offset-seconds` test aid) and a correct one take turns over
the same host, and none freezes, loses or rolls back the device; a batch that really is old
(spooled, delivered after a newer run) is skipped and counted: a log line, and `jobs show`'s
stale count.

Real processes on SQLite and PostgreSQL; the host is a listener on a loopback address of
its own, on ports the kernel picks; nmap (`-sT -n -Pn`) is the oracle for the ports.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from outpost.agent.v1 import agent_pb2
from services.collector.store.spool import Spool
from tests.e2e.test_discovery_flow import PASSWORD
from tests.e2e.test_inventory_truth import nmap_states
from tests.process_harness import Collector, ControlPlane, wait_for

HOST = "127.0.51.1"
HOUR = 3600


def collector(plane: ControlPlane, tmp_path: Path, name: str, *extra: str) -> Collector:
    started = Collector(tmp_path, name, [plane.url("grpc")], PASSWORD, zone="lab", extra_args=list(extra)).start()
    started.wait_state("pending")
    plane.ctl(
        "collectors", "register", name, "--username", started.username, "--password-stdin", "--enable",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    started.wait_state("enabled")
    return started


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(16)
    return sock


def run(plane: ControlPlane, discovery: str) -> str:
    summary = json.loads(plane.ctl("discoveries", "run", discovery, "--wait", "--json").stdout)
    assert summary["state"] == "succeeded", summary
    return str(summary["id"])


def device(plane: ControlPlane) -> dict[str, Any]:
    return dict(json.loads(plane.ctl("devices", "show", HOST, "--json").stdout))


def job(plane: ControlPlane, run_id: str) -> dict[str, Any]:
    return dict(json.loads(plane.ctl("jobs", "show", run_id, "--json").stdout))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_collector_an_hour_ahead_and_a_correct_one_alternate_without_freezing_and_a_late_batch_is_counted(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    a, b = listener(), listener()
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    b.close()  # B opens later: each collector's turn must show what changed
    fast = collector(control_plane, tmp_path, "edge-fast", "--clock-offset-seconds", str(HOUR))
    slow = collector(control_plane, tmp_path, "edge-slow", "--clock-offset-seconds", str(-HOUR))
    right = collector(control_plane, tmp_path, "edge-right")
    try:
        skews = {
            c["name"]: c["clock_skew_ms"] for c in json.loads(control_plane.ctl("collectors", "list", "--json").stdout)
        }
        assert abs(skews["edge-fast"] - HOUR * 1000) < 5000 and abs(skews["edge-slow"] + HOUR * 1000) < 5000, skews
        common = ["--targets", HOST, "--ports", f"{port_a},{port_b}", "--probes", "tcp"]
        control_plane.ctl("discoveries", "create", "fast", *common, "--collector", "edge-fast")
        control_plane.ctl("discoveries", "create", "right", *common, "--collector", "edge-right")
        control_plane.ctl("discoveries", "create", "slow", *common, "--collector", "edge-slow")

        turns: list[tuple[str, str]] = []
        seen: list[datetime] = []
        for turn, discovery in enumerate(["fast", "right", "slow", "fast", "right"]):
            if turn == 1:
                b = socket.create_server((HOST, port_b))
            if turn == 2:
                a.close()  # found closed by the collector an hour behind: its turn counts too
            before = datetime.now(UTC)
            run_id = run(control_plane, discovery)
            after = datetime.now(UTC)
            turns.append((discovery, run_id))

            now = device(control_plane)
            last_seen = when(now["last_seen"])
            assert now["last_job_run_id"] == run_id, (turn, now)  # every turn lands: nothing frozen
            assert before - timedelta(seconds=1) <= last_seen <= after, (turn, last_seen)  # never an hour ahead
            seen.append(last_seen)
            oracle = nmap_states(HOST, [port_a, port_b])
            assert sorted(now["open_ports"]) == sorted(p for p, state in oracle.items() if state == "open")
            assert job(control_plane, run_id)["observations_stale"] == 0

        assert seen == sorted(seen)
        history = [(c["field"], c["old_value"], c["new_value"]) for c in device(control_plane)["history"]]
        assert history == [
            ("created", "", HOST),
            (f"port.{port_b}", "", "open"),
            (f"port.{port_a}", "open", "closed"),
        ]  # exactly the changes the world made: nothing rolled back, nothing flapped

        # A batch the fast collector spooled during its last turn, delivered only now (as after
        # an outage): ten minutes old by its own clock, which is an hour ahead.
        _, last_fast_run = turns[3]
        fast.stop()
        then_ms = int((time.time() + HOUR - 600) * 1000)
        asyncio.run(_spool_late_batch(fast.data_dir, last_fast_run, then_ms, port_a))
        fast.restart().wait_state("enabled")

        counted = wait_for(
            lambda: job(control_plane, last_fast_run)["observations_stale"] or None,
            what="the late batch counted on its run",
        )
        assert counted == 1
        assert "stale" in control_plane.ctl("jobs", "show", last_fast_run).stdout
        now = device(control_plane)
        assert now["last_job_run_id"] == turns[4][1]  # the newer run's state stands
        assert sorted(now["open_ports"]) == [port_b]  # port A is not reopened by the old batch
        logged = [e for e in control_plane.live_gateway().log_events() if e.get("event") == "observation_stale"]
        assert [(e["ip"], e["job_run_id"], e["last_job_run_id"]) for e in logged] == [
            (HOST, last_fast_run, turns[4][1])
        ]
    finally:
        a.close()
        b.close()
        for each in (fast, slow, right):
            each.stop()


async def _spool_late_batch(data_dir: Path, run_id: str, observed_at_ms: int, port: int) -> None:
    spool = Spool.open(data_dir, max_bytes=8 * 1024 * 1024)
    try:
        observation = agent_pb2.DeviceObservation(
            ip=HOST,
            alive_by="tcp",
            ports=[agent_pb2.PortObservation(port=port, protocol="tcp")],
            observed_at_unix_ms=observed_at_ms,
        )
        await spool.put_batch(
            agent_pb2.ResultBatch(
                job_run_id=run_id, attempt=1, sequence=1000, devices=[observation], observed_at_unix_ms=observed_at_ms
            )
        )
    finally:
        spool.close()
