"""outpost-scheduler: wiring only. Today it serves gRPC health, reflection and metrics.

Discoveries, schedules, job runs and dispatch arrive with the scheduled-discovery
capability; the process exists now so deployments, `make run` and health probes have
their final shape. `--database-url`, `--data-dir` and `--registry` are accepted (and
validated) so the supervisor and Helm values need no change when its tables arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import structlog

from outpost.config import add_common_flags, env_default
from outpost.db import redact
from outpost.logs import configure_logging
from outpost.ready import write_ready_file
from outpost.runtime import TlsFiles, bind, build_grpc_server, install_shutdown_signals, set_serving, start_metrics

log = structlog.get_logger(__name__)
SERVICE = "scheduler"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="outpost-scheduler", description="Outpost scheduler (health only for now)")
    p.add_argument("--listen", default=env_default(SERVICE, "listen", "127.0.0.1:50071"))
    p.add_argument("--metrics-listen", default=env_default(SERVICE, "metrics_listen", "127.0.0.1:9103"))
    p.add_argument("--data-dir", default=env_default(SERVICE, "data_dir", ".outpost"))
    p.add_argument("--database-url", default=env_default(SERVICE, "database_url"))
    p.add_argument("--registry", default=env_default(SERVICE, "registry", "127.0.0.1:50051"))
    p.add_argument("--tls-cert", default=env_default(SERVICE, "tls_cert"))
    p.add_argument("--tls-key", default=env_default(SERVICE, "tls_key"))
    p.add_argument("--ready-file", default=env_default(SERVICE, "ready_file"))
    add_common_flags(p, SERVICE)
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.database_url:
        try:
            redact(args.database_url)
        except Exception as exc:
            p.error(f"invalid --database-url: {exc}")
    return args


async def serve(args: argparse.Namespace) -> None:
    stop = install_shutdown_signals()
    server, health = build_grpc_server(service_names=[])
    tls = TlsFiles(args.tls_cert, args.tls_key) if args.tls_cert else None
    port = bind(server, args.listen, tls, "scheduler gRPC")
    await server.start()
    host = args.listen.rpartition(":")[0] or "127.0.0.1"
    ready = {"grpc": f"{host}:{port}"}
    metrics_port = start_metrics(args.metrics_listen)
    if metrics_port:
        ready["metrics"] = f"{args.metrics_listen.rpartition(':')[0]}:{metrics_port}"
    await set_serving(health, [], True)
    log.info("scheduler_started", **ready)
    write_ready_file(args.ready_file, service=SERVICE, **ready)
    await stop.wait()
    await set_serving(health, [], False)
    await server.stop(grace=5.0)
    log.info("scheduler_stopped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_format, args.log_level, service=SERVICE)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    sys.exit(0)
