"""The scheduler's client of the registry: which collectors exist, their zone and state.

One RPC, `ListCollectors` (granted to the scheduler's identity in `outpost.auth.policy`),
converted to `domain.waiting.CollectorInfo` at this edge. Every call has a deadline; a
registry that cannot be reached is `Unavailable`, and callers decide what that means
(create refuses to guess; waiting reasons keep what they last knew).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC

import grpc

from outpost import errors
from outpost.agent.v1 import agent_pb2
from outpost.grpc_errors import error_from_rpc
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from services.scheduler.domain.waiting import CollectorInfo, CollectorState

LIST_TIMEOUT_SECONDS = 5.0
LIST_PAGE_SIZE = 1000
"""The registry's largest page."""
STATE_FROM_PROTO = {
    agent_pb2.COLLECTOR_STATE_PENDING: CollectorState.PENDING,
    agent_pb2.COLLECTOR_STATE_ENABLED: CollectorState.ENABLED,
    agent_pb2.COLLECTOR_STATE_DISABLED: CollectorState.DISABLED,
}

ListCollectors = Callable[[], Awaitable[list[CollectorInfo]]]
"""What the catalog and the waiting reasons are handed: every collector the registry knows."""


class RegistryCollectors:
    """`ListCollectors` over a channel that presents this scheduler's identity."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)

    async def __call__(self) -> list[CollectorInfo]:
        """Every page (`ListCollectors` answers 100 by default since it pages, ADR 0027):
        with one page, collector 101 of a fleet was "not registered" to CreateDiscovery."""
        found: list[CollectorInfo] = []
        token = ""
        while True:
            try:
                reply = await self._stub.ListCollectors(
                    registry_pb2.ListCollectorsRequest(page_size=LIST_PAGE_SIZE, page_token=token),
                    timeout=LIST_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as exc:
                raise errors.Unavailable(f"cannot list collectors at the registry: {error_from_rpc(exc)}") from exc
            found += [
                CollectorInfo(
                    name=c.name,
                    zone=c.zone,
                    state=STATE_FROM_PROTO.get(c.state, CollectorState.PENDING),
                    online=c.online,
                    last_seen=c.last_seen.ToDatetime(tzinfo=UTC) if c.HasField("last_seen") else None,
                )
                for c in reply.collectors
            ]
            token = reply.next_page_token
            if not token:
                return found
