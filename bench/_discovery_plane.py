"""The e2e harness's control plane for the discovery benches, and how they enroll collectors.

`tests/process_harness.py` starts the registry, scheduler and gateway as real processes on
free ports (SQLite in a temp dir), waits on their ready files and stops them by pid; the
dispatch and RSS benches reuse it rather than keep a second copy. `tests/` is not an
installed package, so this module puts the source tree on `sys.path` first.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from outpost.auth.service_tokens import peer_channel  # noqa: E402
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc  # noqa: E402
from tests.process_harness import Collector, ControlPlane, wait_for  # noqa: E402

REGISTER_IN_FLIGHT = 4

__all__ = ["Collector", "ControlPlane", "register_collectors", "start_control_plane", "wait_for"]


def start_control_plane(
    workdir: Path, heartbeat_interval: int = 30, registry_args: list[str] | None = None
) -> ControlPlane:
    """Registry, scheduler and gateway on SQLite under `workdir`; stop it with `.stop()`."""
    plane = ControlPlane(workdir, "sqlite", heartbeat_interval=heartbeat_interval, registry_args=registry_args or [])
    try:
        plane.start()
    except BaseException:
        plane.stop()
        raise
    return plane


async def register_collectors(registry: str, admin_token: str, names: list[str], username: str, password: str) -> None:
    """What an admin does for each pending collector: RegisterCollector with enable, a few at a time.

    With the bootstrap admin token the registry wrote (`ControlPlane.admin_token`).
    """
    async with peer_channel(registry, None, admin_token) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        gate = asyncio.Semaphore(REGISTER_IN_FLIGHT)

        async def register(name: str) -> None:
            async with gate:
                await stub.RegisterCollector(
                    registry_pb2.RegisterCollectorRequest(
                        name=name, username=username, password=password, enable=True, actor="bench"
                    ),
                    timeout=60,
                )

        await asyncio.gather(*(register(name) for name in names))
