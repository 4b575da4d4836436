"""The scheduler reads every page of the registry's collectors (ListCollectors pages, 100 by default)."""

from __future__ import annotations

from typing import Any

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2
from services.scheduler.registry_client import RegistryCollectors


class PagedRegistry:
    """ListCollectors over `count` collectors, at most `page_size` a page, keyset tokens."""

    def __init__(self, count: int) -> None:
        self.names = [f"edge-{i:04d}" for i in range(count)]
        self.requests: list[registry_pb2.ListCollectorsRequest] = []

    async def ListCollectors(self, request: registry_pb2.ListCollectorsRequest, **_: Any) -> Any:
        self.requests.append(request)
        start = int(request.page_token or 0)
        size = min(request.page_size or 100, 1000)
        page = self.names[start : start + size]
        more = start + size < len(self.names)
        return registry_pb2.ListCollectorsResponse(
            collectors=[
                registry_pb2.Collector(name=n, zone="lab", state=agent_pb2.COLLECTOR_STATE_ENABLED) for n in page
            ],
            next_page_token=str(start + size) if more else "",
        )


async def test_every_page_of_collectors_is_read() -> None:
    registry = PagedRegistry(2500)
    client = RegistryCollectors.__new__(RegistryCollectors)
    client._stub = registry  # type: ignore[assignment]
    found = await client()
    assert [c.name for c in found] == registry.names
    assert len(registry.requests) == 3
