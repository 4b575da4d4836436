"""Scheduled discovery end to end: define, dispatch over the live session, scan, inventory.

Real processes (registry, scheduler, gateway, collector, outpostctl) on SQLite and
PostgreSQL; real listeners on loopback addresses as the "network"; nmap as the oracle.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.process_harness import Collector, ControlPlane, wait_for

PASSWORD = "discovery-test-password"
HOSTS = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"]
PORTS = [2201, 2280, 2443, 2999]
OPEN = {("127.0.0.21", 2201), ("127.0.0.21", 2280), ("127.0.0.22", 2443), ("127.0.0.24", 2999)}


@pytest.fixture
def listeners() -> Iterator[set[tuple[str, int]]]:
    sockets = []
    for host, port in OPEN:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        sockets.append(sock)
    try:
        yield OPEN
    finally:
        for sock in sockets:
            sock.close()


def nmap_open_ports(hosts: list[str], ports: list[int]) -> set[tuple[str, int]]:
    """The oracle: what `nmap -sT -n -Pn` says is open."""
    out = subprocess.run(
        ["nmap", "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-", *hosts],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    found = set()
    for host in ET.fromstring(out).iter("host"):
        address = host.find("address").get("addr")  # type: ignore[union-attr]
        for port in host.iter("port"):
            if port.find("state").get("state") == "open":  # type: ignore[union-attr]
                found.add((address, int(port.get("portid"))))  # type: ignore[arg-type]
    return found


def enabled_collector(
    plane: ControlPlane, tmp_path: Path, name: str, transport: str = "grpc", extra_args: Sequence[str] = ()
) -> Collector:
    """A collector started, registered and enabled; stopped again if it never gets there
    (a test's `finally` only stops what this returned)."""
    collector = Collector(tmp_path, name, [plane.url(transport)], PASSWORD, zone="lab", extra_args=list(extra_args))
    collector.start()
    try:
        collector.wait_state("pending")
        plane.ctl(
            "collectors",
            "register",
            name,
            "--username",
            collector.username,
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
        )
        collector.wait_state("enabled")
    except BaseException:
        collector.stop()
        raise
    return collector


def inventory_open_ports(plane: ControlPlane) -> set[tuple[str, int]]:
    devices = json.loads(plane.ctl("devices", "list", "--json").stdout)
    return {(d["ip"], port) for d in devices for port in d["open_ports"]}


def test_manual_run_is_pushed_scanned_and_matches_nmap(
    control_plane: ControlPlane, tmp_path: Path, listeners: set[tuple[str, int]]
) -> None:
    collector = enabled_collector(control_plane, tmp_path, "edge-scan")
    try:
        control_plane.ctl(
            "discoveries",
            "create",
            "lab",
            "--targets",
            "127.0.0.21-127.0.0.24",
            "--ports",
            ",".join(map(str, PORTS)),
            "--collector",
            "edge-scan",
            "--probes",
            "tcp,banners",
        )
        result = control_plane.ctl("discoveries", "run", "lab", "--wait", "--json")
        summary = json.loads(result.stdout)
        assert summary["state"] == "succeeded", summary
        assert summary["targets_total"] == len(HOSTS)

        oracle = nmap_open_ports(HOSTS, PORTS)
        assert oracle == listeners
        assert inventory_open_ports(control_plane) == oracle

        devices = {d["ip"]: d for d in json.loads(control_plane.ctl("devices", "list", "--json").stdout)}
        # Every loopback address answers (a refused connection is a host saying no), so
        # each target is a device; only the listeners' ports are open.
        assert set(devices) == set(HOSTS)
        assert devices["127.0.0.23"]["open_ports"] == []
        assert all(d["zone"] == "lab" for d in devices.values())
        jobs = json.loads(control_plane.ctl("jobs", "list", "--json").stdout)
        assert [j["state"] for j in jobs] == ["succeeded"]
        assert jobs[0]["collector"] == "edge-scan"
    finally:
        collector.stop()


def test_a_resent_scan_changes_history_only_where_the_network_changed(
    control_plane: ControlPlane, tmp_path: Path, listeners: set[tuple[str, int]]
) -> None:
    collector = enabled_collector(control_plane, tmp_path, "edge-history")
    extra = socket.socket()
    try:
        control_plane.ctl(
            "discoveries",
            "create",
            "hist",
            "--targets",
            "127.0.0.21",
            "--ports",
            ",".join(map(str, PORTS)),
            "--collector",
            "edge-history",
            "--probes",
            "tcp",
        )
        assert (
            json.loads(control_plane.ctl("discoveries", "run", "hist", "--wait", "--json").stdout)["state"]
            == "succeeded"
        )
        extra.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        extra.bind(("127.0.0.21", 2443))
        extra.listen(4)
        assert (
            json.loads(control_plane.ctl("discoveries", "run", "hist", "--wait", "--json").stdout)["state"]
            == "succeeded"
        )
        device = json.loads(control_plane.ctl("devices", "show", "127.0.0.21", "--json").stdout)
        assert sorted(device["open_ports"]) == [2201, 2280, 2443]
        port_changes = [h for h in device["history"] if h["field"].startswith("port.")]
        assert [(h["field"], h["new_value"]) for h in port_changes if h["field"] == "port.2443"] == [
            ("port.2443", "open")
        ]
        assert len([h for h in device["history"] if h["field"] == "port.2201"]) <= 1
    finally:
        extra.close()
        collector.stop()


def test_disabled_collector_is_never_sent_a_run_until_enabled(
    control_plane: ControlPlane, tmp_path: Path, listeners: set[tuple[str, int]]
) -> None:
    collector = enabled_collector(control_plane, tmp_path, "edge-gated")
    try:
        control_plane.ctl("collectors", "disable", "edge-gated")
        collector.wait_state("disabled")
        control_plane.ctl(
            "discoveries",
            "create",
            "gated",
            "--targets",
            "127.0.0.21",
            "--ports",
            "2201",
            "--collector",
            "edge-gated",
            "--probes",
            "tcp",
        )
        run = json.loads(control_plane.ctl("discoveries", "run", "gated", "--json").stdout)
        job = json.loads(control_plane.ctl("jobs", "show", run["id"], "--json").stdout)
        assert job["state"] == "queued"
        control_plane.ctl("collectors", "enable", "edge-gated")
        enabled_at = dt.datetime.now(dt.UTC)
        wait_for(
            lambda: json.loads(control_plane.ctl("jobs", "show", run["id"], "--json").stdout)["state"] == "succeeded",
            timeout=30,
            what="run completes once the collector is enabled",
        )
        started = [e for e in collector.process.log_events() if e.get("event") == "job_run_started"]  # type: ignore[union-attr]
        assert len(started) == 1
        assert dt.datetime.fromisoformat(started[0]["timestamp"]) >= enabled_at - dt.timedelta(seconds=1)
    finally:
        collector.stop()


@pytest.fixture
def short_minute_plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    """A control plane whose gateway counts a check-in minute as one second
    (`--check-minute-seconds 1`, a test flag): a polling collector set to check in every
    minute does so every second, so a test waits for the cron minute only, not a check-in more."""
    plane = ControlPlane(tmp_path / "server", database_url, gateway_args=["--check-minute-seconds", "1"]).start()
    try:
        yield plane
    finally:
        plane.stop()


# SQLite only: what the database does here (a due minute becomes exactly one run) is
# tests/integration/test_scheduler_ticks.py's, on both databases with a fake clock; the
# push and the polling pick-up are the same code on both (the manual runs above run on both).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.timeout(300)  # waits for a cron minute (up to two when it is too close)
def test_due_schedules_run_by_themselves_pushed_live_and_picked_up_by_a_polling_collector(
    short_minute_plane: ControlPlane, tmp_path: Path, listeners: set[tuple[str, int]]
) -> None:
    """One minute serves both: a live (gRPC) collector gets its run pushed when due; a
    polling collector, registered while it waits between check-ins, picks its due run up
    at its next check-in."""
    control_plane = short_minute_plane
    control_plane.ctl("config", "set", "collector_check_minutes", "1")
    live = enabled_collector(control_plane, tmp_path, "edge-cron")
    polling = Collector(tmp_path, "edge-poll", [control_plane.url("http_poll")], PASSWORD, zone="lab").start()
    try:
        polling.wait_state("pending")
        polling_entry = next(c for c in control_plane.collectors() if c["name"] == "edge-poll")
        assert polling_entry["transport"] == "http_poll"
        control_plane.ctl(
            "collectors",
            "register",
            "edge-poll",
            "--username",
            polling.username,
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
        )
        for collector, port in (("edge-cron", 2201), ("edge-poll", 2280)):
            control_plane.ctl(
                "discoveries",
                "create",
                f"cron-{collector}",
                "--targets",
                "127.0.0.21",
                "--ports",
                str(port),
                "--collector",
                collector,
                "--probes",
                "tcp",
            )
        now = dt.datetime.now(dt.UTC)
        # The next minute, unless it is too close to create the schedules before it.
        due = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1 if now.second < 45 else 2)
        for collector in ("edge-cron", "edge-poll"):
            control_plane.ctl(
                "schedules",
                "create",
                f"every-hour-{collector}",
                "--discovery",
                f"cron-{collector}",
                "--minute",
                str(due.minute),
                "--hour",
                "*",
                "--day-of-month",
                "*",
                "--month",
                "*",
                "--day-of-week",
                "*",
                "--timezone",
                "UTC",
            )

        def scheduled_runs() -> dict[str, dict]:
            jobs = json.loads(control_plane.ctl("jobs", "list", "--json").stdout)
            return {j["collector"]: j for j in jobs if j["trigger"] == "schedule" and j["state"] == "succeeded"}

        def both_scheduled_runs() -> dict[str, dict] | None:
            runs = scheduled_runs()
            return runs if len(runs) == 2 else None

        # Nothing can be due before `due`: wait for the clock first (cheap), then ask the
        # scheduler (an outpostctl process per ask).
        wait_for(lambda: dt.datetime.now(dt.UTC) >= due, timeout=150, interval=0.2, what="the due minute")
        runs = wait_for(
            both_scheduled_runs,
            timeout=200,
            interval=1.0,  # the polling collector checks in once a (one-second) minute
            what="both scheduled runs succeeded",
        )
        assert set(runs) == {"edge-cron", "edge-poll"}
        assert all(dt.datetime.fromisoformat(r["due_at"]) == due for r in runs.values())
        assert {("127.0.0.21", 2201), ("127.0.0.21", 2280)} <= inventory_open_ports(control_plane)
        states = [e["state"] for e in polling.process.log_events() if e.get("event") == "collector_state_changed"]  # type: ignore[union-attr]
        assert states == ["pending", "enabled"]
        started = [e for e in live.process.log_events() if e.get("event") == "job_run_started"]  # type: ignore[union-attr]
        assert len(started) == 1
    finally:
        live.stop()
        polling.stop()


def test_a_collector_with_scan_worker_processes_finds_what_nmap_finds(
    control_plane: ControlPlane, tmp_path: Path, listeners: set[tuple[str, int]]
) -> None:
    """`--scan-workers 2`: a /28 x 64 ports (1,024 pairs, enough for the engine to use them)."""
    ports = [*PORTS, *range(2300, 2360)]
    collector = enabled_collector(control_plane, tmp_path, "edge-workers", extra_args=["--scan-workers", "2"])
    try:
        control_plane.ctl(
            "discoveries",
            "create",
            "wide",
            "--targets",
            "127.0.0.16/28",
            "--ports",
            ",".join(map(str, ports)),
            "--collector",
            "edge-workers",
        )
        summary = json.loads(control_plane.ctl("discoveries", "run", "wide", "--wait", "--json").stdout)
        assert summary["state"] == "succeeded", summary

        hosts = [f"127.0.0.{last}" for last in range(16, 32)]
        oracle = nmap_open_ports(hosts, ports)
        assert oracle == listeners
        assert inventory_open_ports(control_plane) == oracle
        assert collector.process is not None
        finished = [json.loads(line) for line in collector.process.log().splitlines() if '"discovery_finished"' in line]
        assert [(line["scan_workers"], line["scan_workers_lost"]) for line in finished] == [(2, 0)]
    finally:
        collector.stop()
