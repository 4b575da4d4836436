"""Getting bench collectors registered: announce, an admin registers+enables, all live.

What `idle_sessions.py` and `dispatch_latency.py` do, for any `IdleCollector` subclass:
every collector connects and waits PENDING (a few at a time, retrying a refused
handshake after a second, as a real collector would), then `RegisterCollector(enable)`
for each (the registry verifies the password with argon2 per call, so every collector's
verifier, bound to its key, is deliberately cheap: `CollectorIdentity.verifier`), and each connected
session goes ENABLED through the gateway's registry watch, the registration made with
the admin token (`harness.credentials`). None of it is measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

from harness.credentials import authorized_channel
from harness.idle_collector import IdleCollector
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session.collector import CollectorState
from services.collector.domain.server_url import ServerUrl

USERNAME = "svc-bench"
PASSWORD = "bench-password"
ANNOUNCE_IN_FLIGHT = 25
ANNOUNCE_ATTEMPTS = 3
REGISTER_IN_FLIGHT = 4
CONNECT_TIMEOUT = 120.0

C = TypeVar("C", bound=IdleCollector)


async def register_all(
    registry: str,
    admin_token: str,
    names: Sequence[str],
    *,
    username: str = USERNAME,
    password: str = PASSWORD,
    in_flight: int = REGISTER_IN_FLIGHT,
) -> None:
    """What an admin does for each pending collector: RegisterCollector with enable, a few at a time."""
    async with authorized_channel(registry, admin_token) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        gate = asyncio.Semaphore(in_flight)

        async def register(name: str) -> None:
            async with gate:
                await stub.RegisterCollector(
                    registry_pb2.RegisterCollectorRequest(
                        name=name, username=username, password=password, enable=True, actor="bench"
                    ),
                    timeout=60,
                )

        await asyncio.gather(*(register(name) for name in names))


async def enroll(make: Callable[[int], C], count: int, url: ServerUrl, registry: str, admin_token: str) -> list[C]:
    """`count` collectors made by `make(i)`, connected, registered and ENABLED; closed if anything fails."""
    gate = asyncio.Semaphore(ANNOUNCE_IN_FLIGHT)
    collectors: list[C | None] = [None] * count

    async def announce(i: int) -> None:
        async with gate:
            for attempt in range(ANNOUNCE_ATTEMPTS):
                collector = collectors[i] = make(i)
                try:
                    await collector.connect(url, CollectorState.PENDING, CONNECT_TIMEOUT)
                except RuntimeError:
                    await collector.close()
                    if attempt + 1 == ANNOUNCE_ATTEMPTS:
                        raise
                    await asyncio.sleep(1.0)
                else:
                    return

    try:
        await asyncio.gather(*(announce(i) for i in range(count)))
        live = [c for c in collectors if c is not None]
        await register_all(registry, admin_token, [c.identity.name for c in live])
        await asyncio.gather(*(c.wait_for(CollectorState.ENABLED, CONNECT_TIMEOUT) for c in live))
    except BaseException:
        await close_all([c for c in collectors if c is not None])
        raise
    return live


async def close_all(collectors: Sequence[IdleCollector]) -> None:
    await asyncio.gather(*(c.close() for c in collectors), return_exceptions=True)
