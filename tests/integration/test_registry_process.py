"""`outpost-registry` as a real process: ready file, health, /metrics, SIGTERM, bad config."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from outpost.ready import read_ready_file
from tests.integration.test_registry_support import eventually

EXECUTABLE = Path(sys.executable).parent / "outpost-registry"
SERVICE_NAME = "outpost.registry.v1.RegistryService"


async def test_registry_process_serves_health_and_metrics_and_exits_zero_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    ready_file = tmp_path / "registry.ready.json"
    log_file = tmp_path / "registry.log"
    with log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(EXECUTABLE),
            "--listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0",
            f"--data-dir={tmp_path / 'data'}",
            f"--database-url={database_url}",
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
        assert info["service"] == "registry" and info["pid"] == process.pid
        assert info["server_instance"]

        async with grpc.aio.insecure_channel(info["grpc"]) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE_NAME):
                response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.SERVING

        metrics = await asyncio.to_thread(_get, f"http://{info['metrics']}/metrics")
        assert "outpost_registry_watchers" in metrics
        assert "outpost_registry_authentications_total" in metrics

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            exit_code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert exit_code == 0, log_file.read_text()
    lines = log_file.read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines if line.startswith("{")]
    assert events[-1] == "registry_stopped"
    assert "registry_started" in events


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_bad_configuration_exits_nonzero_with_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(EXECUTABLE), "--heartbeat-interval=0", f"--data-dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "outpost-registry: error: argument --heartbeat-interval: must be > 0, got 0"
    ]
