"""Admin calls (register, enable, disable, remove, info) against the real registry server."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from outpost.db import create_engine
from outpost.registry.v1 import registry_pb2
from outpost.version import VERSION
from tests.integration.test_registry_support import (
    CANARY_PASSWORD,
    CS,
    USERNAME,
    FakeCollector,
    announce,
    get,
    register,
    running_registry,
    watching,
)

PERMISSION_MESSAGE = "username or password does not match what collector 'edge-7' was installed with; it stays pending"


@pytest.mark.parametrize(
    ("username", "password"),
    [(USERNAME, "not-the-password"), ("someone-else", CANARY_PASSWORD)],
    ids=["wrong-password", "wrong-username"],
)
async def test_wrong_credentials_are_refused_alike_and_collector_stays_pending(
    database_url: str, username: str, password: str
) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        before = await get(registry, "edge-7")

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(registry, "edge-7", username=username, password=password)

        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.value.details() == PERMISSION_MESSAGE
        after = await get(registry, "edge-7")
        assert after.state == CS.COLLECTOR_STATE_PENDING
        assert after.revision == before.revision


async def test_right_credentials_with_enable_make_the_collector_enabled_and_tell_the_watch(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        async with watching(registry) as watch:
            bookmark = await watch.next()
            assert bookmark.kind == registry_pb2.EVENT_KIND_BOOKMARK

            registered = await register(registry, "edge-7", enable=True)

            event = await watch.next_change(timeout=2.0)
        assert registered.state == CS.COLLECTOR_STATE_ENABLED
        assert registered.state_changed_by == "alice"
        assert registered.state_reason == "registered by alice"
        assert registered.registered_at.seconds > 0
        assert event.kind == registry_pb2.EVENT_KIND_STATE_CHANGED
        assert (event.name, event.instance_uid) == ("edge-7", collector.instance_uid)
        assert event.state == CS.COLLECTOR_STATE_ENABLED
        assert event.changed_by == "alice"
        assert event.revision == registered.revision > bookmark.revision


async def test_registering_without_enable_leaves_the_collector_disabled(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        registered = await register(registry, "edge-7", enable=False)
        assert registered.state == CS.COLLECTOR_STATE_DISABLED


async def test_registering_twice_is_a_failed_precondition(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        await register(registry, "edge-7")

        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await register(registry, "edge-7")

        assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert failed.value.details() == "collector 'edge-7' is already registered (enabled)"


async def test_registration_never_logs_or_returns_the_password(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        with capture_logs() as logs:
            with pytest.raises(grpc.aio.AioRpcError):
                await register(registry, "edge-7", password="wrong-" + CANARY_PASSWORD)
            registered = await register(registry, "edge-7")
            await collector.authenticate(registry)

        events = [entry["event"] for entry in logs]
        assert "collector_registration_refused" in events
        assert "collector_registered" in events
        assert "collector_authenticated" in events
        assert CANARY_PASSWORD not in repr(logs)
        assert collector.verifier not in repr(logs)
        assert CANARY_PASSWORD not in str(registered)


AdminCall = Callable[[Any], Awaitable[Any]]


def _admin_calls(registry: Any) -> dict[str, AdminCall]:
    stub = registry.stub
    return {
        "enable": lambda name: stub.EnableCollector(registry_pb2.EnableCollectorRequest(name=name)),
        "disable": lambda name: stub.DisableCollector(registry_pb2.DisableCollectorRequest(name=name)),
        "remove": lambda name: stub.RemoveCollector(registry_pb2.RemoveCollectorRequest(name=name)),
        "get": lambda name: stub.GetCollector(registry_pb2.GetCollectorRequest(name=name)),
        "register": lambda name: stub.RegisterCollector(
            registry_pb2.RegisterCollectorRequest(name=name, username="u", password="p")
        ),
    }


@pytest.mark.parametrize("call", ["enable", "disable", "remove", "get", "register"])
async def test_admin_calls_on_an_unknown_name_are_not_found(database_url: str, call: str) -> None:
    async with running_registry(database_url) as registry:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _admin_calls(registry)[call]("ghost")

        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
        assert failed.value.details() == (
            "no collector named 'ghost'; `outpostctl collectors list --state pending` shows those waiting"
        )


@pytest.mark.parametrize("call", ["enable", "disable"])
async def test_enabling_or_disabling_a_pending_collector_is_a_failed_precondition(database_url: str, call: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")

        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _admin_calls(registry)[call]("edge-7")

        assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert failed.value.details() == (
            "collector 'edge-7' is pending; register it first with `outpostctl collectors register`"
        )
        assert (await get(registry, "edge-7")).state == CS.COLLECTOR_STATE_PENDING


async def test_disable_and_enable_change_state_once_and_are_idempotent(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        registered = await register(registry, "edge-7", enable=True)
        bob_secret, carol_secret = await registry.token("bob", "operator"), await registry.token("carol", "operator")

        async with (
            watching(registry, since_revision=registered.revision) as watch,
            registry.stub_as(bob_secret) as bob,
            registry.stub_as(carol_secret) as carol,
        ):
            await watch.next()  # caught up
            again = await bob.EnableCollector(registry_pb2.EnableCollectorRequest(name="edge-7"))
            disabled = await bob.DisableCollector(
                registry_pb2.DisableCollectorRequest(name="edge-7", reason="site audit")
            )
            disabled_again = await carol.DisableCollector(registry_pb2.DisableCollectorRequest(name="edge-7"))
            enabled = await carol.EnableCollector(registry_pb2.EnableCollectorRequest(name="edge-7"))
            first, second = await watch.next_change(), await watch.next_change()

        assert again.collector.revision == registered.revision  # no event for a no-op
        assert disabled.collector.state == CS.COLLECTOR_STATE_DISABLED
        assert (disabled.collector.state_reason, disabled.collector.state_changed_by) == (
            "site audit",
            "bob",
        )
        assert disabled_again.collector.revision == disabled.collector.revision
        assert disabled_again.collector.state_changed_by == "bob"
        assert enabled.collector.state == CS.COLLECTOR_STATE_ENABLED
        assert enabled.collector.state_reason == "enabled by carol"
        assert (first.state, first.reason, first.revision) == (
            CS.COLLECTOR_STATE_DISABLED,
            "site audit",
            disabled.collector.revision,
        )
        assert (second.state, second.revision) == (
            CS.COLLECTOR_STATE_ENABLED,
            enabled.collector.revision,
        )


async def test_remove_deletes_the_collector_in_any_state_and_streams_a_removed_event(
    database_url: str,
) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        async with watching(registry) as watch:
            await watch.next()
            await registry.stub.RemoveCollector(
                registry_pb2.RemoveCollectorRequest(name="edge-7", reason="decommissioned")
            )
            event = await watch.next_change(timeout=2.0)

        assert event.kind == registry_pb2.EVENT_KIND_REMOVED
        assert (event.name, event.instance_uid) == ("edge-7", collector.instance_uid)
        assert (event.reason, event.changed_by) == ("decommissioned", "alice")
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await get(registry, "edge-7")
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        # It may come back, and then waits as pending again.
        response = await collector.authenticate(registry)
        assert response.state == CS.COLLECTOR_STATE_PENDING
        assert response.revision > event.revision


async def test_list_collectors_filters_by_state(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        for name in ("a-pending", "b-enabled", "c-disabled"):
            await announce(registry, name)
        await register(registry, "b-enabled", enable=True)
        await register(registry, "c-disabled", enable=False)

        async def names(state: int) -> list[str]:
            response = await registry.stub.ListCollectors(
                registry_pb2.ListCollectorsRequest(state=state)  # type: ignore[arg-type]
            )
            return [c.name for c in response.collectors]

        assert await names(CS.COLLECTOR_STATE_UNSPECIFIED) == ["a-pending", "b-enabled", "c-disabled"]
        assert await names(CS.COLLECTOR_STATE_PENDING) == ["a-pending"]
        assert await names(CS.COLLECTOR_STATE_ENABLED) == ["b-enabled"]
        assert await names(CS.COLLECTOR_STATE_DISABLED) == ["c-disabled"]


async def test_server_info_reports_instance_version_database_and_heartbeat(
    database_url: str,
) -> None:
    async with running_registry(database_url, heartbeat_interval=12) as registry:
        info = await registry.stub.GetServerInfo(registry_pb2.GetServerInfoRequest())

    assert info.server_instance == registry.server_instance
    assert info.version == VERSION
    assert info.started_at.seconds > 0
    assert info.heartbeat_interval_seconds == 12
    assert info.database.split("://")[0] in ("sqlite+aiosqlite", "postgresql+asyncpg")
    assert info.database.split("/")[-1] == database_url.rsplit("/", maxsplit=1)[-1]


async def test_server_instance_is_created_once_and_survives_restarts(database_url: str) -> None:
    async with running_registry(database_url) as first:
        instance = first.server_instance
    async with running_registry(database_url) as second:
        assert second.server_instance == instance


async def test_the_database_holds_no_password_in_clear(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        with pytest.raises(grpc.aio.AioRpcError):
            await register(registry, "edge-7", password="wrong-" + CANARY_PASSWORD)
        await register(registry, "edge-7")
        await FakeCollector("edge-7").authenticate(registry)  # a name conflict row too

    dump = await _dump_every_table(database_url)
    assert "edge-7" in dump  # the dump does see the data
    assert CANARY_PASSWORD not in dump
    # Registered, its verifier (a password-equivalent: its hash is SaltedPassword) is gone;
    # only the SCRAM StoredKey stays, which logs nobody in (ADR 0025).
    assert "$argon2id$" not in dump
    salted = collector.verifier.rsplit("$", 1)[1]
    assert salted not in dump
    assert _b64(salted).decode("latin-1") not in dump


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


async def _dump_every_table(database_url: str) -> str:
    engine = create_engine(database_url, "registry")
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            parts = []
            for name in names:
                rows = await conn.execute(sa.text(f'SELECT * FROM "{name}"'))
                for row in rows:
                    for value in row:
                        parts.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
            return "\n".join(parts)
    finally:
        await engine.dispose()
