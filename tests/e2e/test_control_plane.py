"""`outpost-run` (what `make run` execs) as an operator uses it, plus the operational
surface every service shows: health, metrics, `server info`, loud plaintext warnings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from outpost.ready import read_ready_file
from tests.conftest import POSTGRES_DSN, _drop_database, free_port, postgres_url
from tests.process_harness import BIN, Collector, ControlPlane, pid_running, start_outpost_run, wait_for


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_outpost_run_starts_every_service_and_stops_them_all_on_sigint(tmp_path: Path) -> None:
    cli_config = tmp_path / "home" / ".config" / "outpost" / "config.json"
    supervisor, ports, data_dir = start_outpost_run(tmp_path, env={"OUTPOST_CONFIG": str(cli_config)})
    try:
        ready = {
            svc: wait_for(
                lambda svc=svc: read_ready_file(data_dir / "run" / f"{svc}.ready"), timeout=60, what=f"{svc} ready"
            )
            for svc in ("registry", "scheduler", "gateway")
        }
        # The banner comes after the CLI context is saved; the `service_ready` log lines
        # before it already name the addresses, so waiting on an address alone races.
        wait_for(lambda: "Ctrl-C stops everything." in supervisor.log(), what="the banner printed")
        assert f"TCP 127.0.0.1:{ports['gateway-tcp']}" in supervisor.log()
        for address in (ready["registry"]["grpc"], ready["scheduler"]["grpc"], ready["gateway"]["grpc"]):
            assert _health(address) == health_pb2.HealthCheckResponse.SERVING
        assert (data_dir / "registry.db").exists()

        # Same user, same machine: no flags, no token in the environment; the context
        # `outpost-run` wrote (mode 0600) has the addresses and the bootstrap admin token.
        assert stat.S_IMODE(cli_config.stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "admin.token").stat().st_mode) == 0o600
        # The bootstrap access key (issue 11): private, and the banner's collector lines use it.
        assert stat.S_IMODE((data_dir / "access.key").stat().st_mode) == 0o600
        assert f"--access-key-file {data_dir / 'access.key'} --name edge-1" in supervisor.log()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OUTPOST_")}
        info = subprocess.run(
            [str(BIN / "outpostctl"), "server", "info", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**env, "OUTPOST_CONFIG": str(cli_config)},
        )
        document = json.dumps(json.loads(info.stdout))
        assert ready["registry"]["server_instance"] in document
        assert ready["gateway"]["gateway_id"] in document

        pids = [r["pid"] for r in ready.values()]
        supervisor.popen.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert supervisor.popen.wait(30) == 0  # type: ignore[union-attr]
        for pid in pids:
            wait_for(lambda pid=pid: not pid_running(pid), timeout=15, what=f"pid {pid} gone")
    finally:
        supervisor.stop()


@pytest.mark.postgres
def test_outpost_run_creates_a_missing_postgresql_database_and_piped_output_is_not_wrapped(tmp_path: Path) -> None:
    """`make run DATABASE_URL=postgresql+asyncpg://.../outpost` on a server without that database."""
    name = f"outpost_run_{uuid.uuid4().hex[:12]}"
    cli_config = tmp_path / "config.json"
    supervisor, _, _ = start_outpost_run(
        tmp_path, env={"OUTPOST_CONFIG": str(cli_config)}, extra_args=["--database-url", postgres_url(name)]
    )
    try:
        wait_for(lambda: "Ctrl-C stops everything." in supervisor.log(), timeout=90, what="the banner printed")
        created = [e for e in supervisor.log_events() if e.get("event") == "database_created"]
        assert len(created) == 1 and name in created[0]["database"]

        # Piped (as `outpostctl server info | cat`) beside a narrow terminal: the server key
        # fingerprint, the longest value there, stays whole on one line.
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OUTPOST_")},
            "OUTPOST_CONFIG": str(cli_config),
        }
        as_json = subprocess.run(
            [str(BIN / "outpostctl"), "server", "info", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        )
        fingerprint = json.loads(as_json.stdout)["registry"]["server_key_fingerprint"]
        assert fingerprint.startswith("SHA256:")
        piped = subprocess.run(
            [str(BIN / "outpostctl"), "server", "info"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "COLUMNS": "40"},
            check=True,
        )
        assert any(fingerprint in line for line in piped.stdout.splitlines()), piped.stdout
        assert max(len(line.rstrip()) for line in piped.stdout.splitlines()) > 40  # not wrapped to COLUMNS
    finally:
        supervisor.stop()
        asyncio.run(_drop_database(name))


@pytest.mark.postgres
def test_outpost_run_says_how_to_create_a_database_it_may_not_create(tmp_path: Path) -> None:
    name = f"outpost_run_{uuid.uuid4().hex[:12]}"
    role = f"outpost_nocreate_{uuid.uuid4().hex[:8]}"

    async def as_admin(statement: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(as_admin(f'CREATE ROLE "{role}" LOGIN NOCREATEDB'))
    try:
        url = postgres_url(name).replace("//postgres@", f"//{role}@", 1)
        assert role in url
        supervisor, _, data_dir = start_outpost_run(tmp_path, extra_args=["--database-url", url])
        assert supervisor.popen is not None and supervisor.popen.wait(60) == 1
        shown = supervisor.log()
        assert f"createdb -h 127.0.0.1 -p 5432 -U postgres -O {role} {name}" in shown
        assert f'CREATE DATABASE "{name}" OWNER "{role}";' in shown
        assert not (data_dir / "run" / "registry.ready").exists()  # no service was started
    finally:
        asyncio.run(as_admin(f'DROP ROLE IF EXISTS "{role}"'))


def test_metrics_count_live_sessions_and_server_info_names_the_instance(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "server", f"sqlite+aiosqlite:///{tmp_path / 'outpost.db'}").start()
    collector = Collector(tmp_path, "edge-metrics", [plane.url("websocket")], "pw").start()
    try:
        collector.wait_state("pending")

        def websocket_sessions() -> float:
            text = urllib.request.urlopen(f"http://{plane.gateway_ready['metrics']}/metrics", timeout=5).read().decode()
            lines = [
                line for line in text.splitlines() if line.startswith('outpost_gateway_sessions{transport="websocket"}')
            ]
            return float(lines[0].split()[-1]) if lines else 0.0

        wait_for(lambda: websocket_sessions() == 1.0, what="gateway metric counts the session")
        registry_metrics = (
            urllib.request.urlopen(f"http://{plane.registry_ready['metrics']}/metrics", timeout=5).read().decode()
        )
        assert "outpost_registry_authentications_total" in registry_metrics
        info = plane.ctl("server", "info")
        assert plane.registry_ready["server_instance"] in info.stdout
        session_id = collector.status()["session_id"]
        assert any(
            e.get("session_id") == session_id and e.get("event") == "session_opened" for e in plane.gateway.log_events()
        )  # type: ignore[union-attr]
    finally:
        collector.stop()
        plane.stop()


def test_plaintext_listener_on_a_network_address_warns_loudly(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "server", f"sqlite+aiosqlite:///{tmp_path / 'outpost.db'}").start()
    try:
        plane.gateway.stop()  # type: ignore[union-attr]
        plane.start_gateway("127.0.0.1:0", "127.0.0.1:0", f"0.0.0.0:{free_port()}")
        warnings = [e for e in plane.gateway.log_events() if e.get("event") == "plaintext_listener_on_network"]  # type: ignore[union-attr]
        assert [w["listener"] for w in warnings] == ["tcp"]
        assert warnings[0]["level"] == "warning"
    finally:
        plane.stop()
