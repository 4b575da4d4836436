"""The registry's lists in pages (issue 13 item 5): collectors by name with zone and state
filters, and the admin lists (tokens here) with the same tokens and refusals."""

from __future__ import annotations

import grpc
import pytest

from outpost.agent.v1 import agent_pb2
from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import RunningRegistry, announce, register, running_registry

DMZ = 15
LAB = 10


async def every_collector(registry: RunningRegistry, request: registry_pb2.ListCollectorsRequest) -> list[str]:
    names: list[str] = []
    while True:
        response = await registry.stub.ListCollectors(request)
        names += [c.name for c in response.collectors]
        if not response.next_page_token:
            return names
        request.page_token = response.next_page_token


async def test_collectors_page_by_name_with_zone_and_state_filters(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        for n in range(DMZ):
            await announce(registry, f"dmz-{n:02d}", zone="dmz")
        for n in range(LAB):
            await announce(registry, f"lab-{n:02d}", zone="lab")
        for name in ("dmz-03", "lab-07"):
            await register(registry, name)

        every = await every_collector(registry, registry_pb2.ListCollectorsRequest(page_size=4))
        assert every == sorted([f"dmz-{n:02d}" for n in range(DMZ)] + [f"lab-{n:02d}" for n in range(LAB)])
        lab = await every_collector(registry, registry_pb2.ListCollectorsRequest(zone="lab", page_size=3))
        assert lab == [f"lab-{n:02d}" for n in range(LAB)]
        enabled = await every_collector(
            registry, registry_pb2.ListCollectorsRequest(state=agent_pb2.COLLECTOR_STATE_ENABLED, page_size=1)
        )
        assert enabled == ["dmz-03", "lab-07"]
        enabled_lab = await every_collector(
            registry, registry_pb2.ListCollectorsRequest(state=agent_pb2.COLLECTOR_STATE_ENABLED, zone="lab")
        )
        assert enabled_lab == ["lab-07"]

        # Announced while paging: behind the position, seen once; ahead of it, not at all.
        first = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest(page_size=10))
        await announce(registry, "aaa-early", zone="dmz")
        await announce(registry, "zzz-late", zone="dmz")
        rest = await every_collector(
            registry, registry_pb2.ListCollectorsRequest(page_size=10, page_token=first.next_page_token)
        )
        seen = [c.name for c in first.collectors] + rest
        assert seen == [*every, "zzz-late"]

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.stub.ListCollectors(
                registry_pb2.ListCollectorsRequest(zone="dmz", page_token=first.next_page_token)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "issued for other filters" in (refused.value.details() or "")


async def test_admin_tokens_page_and_a_token_for_another_list_is_refused(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        for n in range(5):
            await registry.stub.CreateToken(
                registry_pb2.CreateTokenRequest(name=f"person-{n}", role=registry_pb2.ROLE_VIEWER)
            )
        names: list[str] = []
        token = ""
        while True:
            page = await registry.stub.ListTokens(registry_pb2.ListTokensRequest(page_size=2, page_token=token))
            names += [t.name for t in page.tokens]
            token = page.next_page_token
            if not token:
                break
        assert [f"person-{n}" for n in range(5)] == [n for n in names if n.startswith("person-")]
        assert len(names) == len(set(names))

        first = await registry.stub.ListTokens(registry_pb2.ListTokensRequest(page_size=1))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.stub.ListAccessKeys(registry_pb2.ListAccessKeysRequest(page_token=first.next_page_token))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "belongs to another list" in (refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.stub.ListTokens(
                registry_pb2.ListTokensRequest(include_revoked=True, page_token=first.next_page_token)
            )
        assert "issued for other filters" in (refused.value.details() or "")
