"""`outpost-scheduler` as a real process: ready file, health, /metrics, SIGTERM, bad config."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from outpost.ready import read_ready_file
from services.scheduler.app import parse_config
from tests.integration.test_scheduler_support import eventually

EXECUTABLE = Path(sys.executable).parent / "outpost-scheduler"
SERVICE_NAME = "outpost.scheduler.v1.SchedulerService"


async def test_scheduler_process_serves_health_and_metrics_and_exits_zero_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    ready_file = tmp_path / "scheduler.ready.json"
    log_file = tmp_path / "scheduler.log"
    with log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(EXECUTABLE),
            "--listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0",
            f"--data-dir={tmp_path / 'data'}",
            f"--database-url={database_url}",
            "--registry=127.0.0.1:1",
            "--tick-interval=0.2",
            f"--ready-file={ready_file}",
            "--log-format=json",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def ready() -> bool:
            assert process.returncode is None, log_file.read_text()
            return read_ready_file(ready_file) is not None

        await eventually(ready, timeout=30.0, what="the ready file")
        info = read_ready_file(ready_file)
        assert info is not None
        assert (info["service"], info["pid"]) == ("scheduler", process.pid)

        async with grpc.aio.insecure_channel(info["grpc"]) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE_NAME):
                response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.SERVING

        metrics = await asyncio.to_thread(_get, f"http://{info['metrics']}/metrics")
        for name in ("outpost_scheduler_watchers", "outpost_scheduler_tick_seconds_count"):
            assert name in metrics

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            exit_code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert exit_code == 0, log_file.read_text()
    events = [json.loads(line)["event"] for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert events[-1] == "scheduler_stopped"
    assert "scheduler_started" in events


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_bad_configuration_exits_nonzero_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(EXECUTABLE), "--tick-interval=0", f"--data-dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "outpost-scheduler: error: argument --tick-interval: must be > 0 and <= 30 (due runs are created "
        "within one tick), got 0"
    ]


def test_flags_fall_back_to_outpost_scheduler_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPOST_SCHEDULER_TICK_INTERVAL", "2.5")
    monkeypatch.setenv("OUTPOST_SCHEDULER_REGISTRY", "registry.internal:50051")
    config = parse_config(["--database-url=sqlite+aiosqlite:///x.db", "--shutdown-grace=3"])
    assert (config.tick_interval, config.registry, config.shutdown_grace) == (2.5, "registry.internal:50051", 3.0)
    assert (config.listen, config.metrics_listen) == ("127.0.0.1:50071", "127.0.0.1:9103")
    with pytest.raises(SystemExit):
        parse_config(["--registry=nowhere"])


def test_leases_and_attempts_are_configured_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "--database-url=sqlite+aiosqlite:///x.db"
    defaults = parse_config([url])
    assert (defaults.lease_seconds, defaults.max_attempts) == (90, 3)
    monkeypatch.setenv("OUTPOST_SCHEDULER_LEASE_SECONDS", "120")
    monkeypatch.setenv("OUTPOST_SCHEDULER_MAX_ATTEMPTS", "5")
    from_env = parse_config([url])
    assert (from_env.lease_seconds, from_env.max_attempts) == (120, 5)
    from_flags = parse_config([url, "--lease-seconds=45", "--max-attempts=1"])
    assert (from_flags.lease_seconds, from_flags.max_attempts) == (45, 1)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--lease-seconds=0", "argument --lease-seconds: must be >= 1 and <= 86400 (a day at most), got 0"),
        ("--lease-seconds=1.5", "argument --lease-seconds: expected a whole number, got '1.5'"),
        ("--max-attempts=0", "argument --max-attempts: must be >= 1 and <= 100 (1 runs each run once), got 0"),
    ],
)
def test_bad_lease_settings_end_the_start_with_one_line(
    flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--database-url=sqlite+aiosqlite:///x.db", flag])
    assert capsys.readouterr().err.strip() == f"outpost-scheduler: error: {message}"
