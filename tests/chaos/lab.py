"""Everything one chaos test starts, and stops again: control plane, collectors, farm, proxies.

`Lab` starts things on the test's own PostgreSQL database and tmp dir and remembers
them; `close()` stops each by its own pid (or closes its sockets), newest first. Process
logs stay under `workdir` for the failure report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.database import ChaosDatabase
from tests.peers.listener_farm import ListenerFarm
from tests.peers.tcp_proxy import TcpProxy
from tests.process_harness import Collector, ControlPlane

PASSWORD = "chaos-test-password"
HEARTBEAT_SECONDS = 2
LEASE_SECONDS = 6  # three heartbeats
LEASE_ARGS = ("--lease-seconds", str(LEASE_SECONDS), "--max-attempts", "3")


@dataclass
class Lab:
    workdir: Path
    database: ChaosDatabase
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def control_plane(
        self,
        *,
        gateways: int = 1,
        schedulers: int = 1,
        heartbeat_interval: int = HEARTBEAT_SECONDS,
        scheduler_args: Sequence[str] = (),
    ) -> ControlPlane:
        plane = ControlPlane(
            self.workdir / "server",
            self.database.url,
            heartbeat_interval=heartbeat_interval,
            gateway_count=gateways,
            scheduler_count=schedulers,
            scheduler_args=list(scheduler_args),
        )
        self._closers.append(plane.stop)
        return plane.start()

    def farm(self, network: str, hosts: int = 40) -> ListenerFarm:
        farm = ListenerFarm(network, hosts)
        self._closers.append(farm.close)
        return farm.start()

    def proxy(self, upstream: str) -> TcpProxy:
        proxy = TcpProxy(upstream)
        self._closers.append(proxy.stop)
        return proxy.start()

    def collector(
        self, plane: ControlPlane, name: str, servers: list[str], zone: str = "lab", args: Sequence[str] = ()
    ) -> Collector:
        """A collector started, registered with its password and enabled."""
        collector = Collector(
            self.workdir,
            name,
            servers,
            PASSWORD,
            zone=zone,
            extra_args=list(args),
            access_key_file=plane.access_key_file,  # the servers may be proxies in front of its gateways
        )
        self._closers.append(collector.stop)
        collector.start()
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
        return collector

    def close(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                close()
        self._closers.clear()

    def log_tails(self, lines: int = 40, width: int = 300) -> str:
        """The end of every process log (long lines cut: tracebacks are in the files), for a failure report."""
        parts = []
        for log in sorted(self.workdir.rglob("*.log")):
            tail = [line[:width] for line in log.read_text(errors="replace").splitlines()[-lines:]]
            parts.append(f"--- {log.relative_to(self.workdir)} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)
