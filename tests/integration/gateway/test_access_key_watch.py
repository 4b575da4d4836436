"""The gateway's AccessKeyCache and ServerKeys against a real registry process.

The cache is the real one the gateway builds (`access_key_watch`), fed over the real
WatchAccessKeys with the gateway's service identity; admins act through the registry's
admin RPCs with the bootstrap admin token, as outpostctl does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from outpost.access_key import AccessKey, read_access_key_file
from outpost.auth import bearer, service_tokens
from outpost.registry.v1 import registry_pb2, registry_pb2_grpc
from outpost.session.handshake import fingerprint
from services.gateway.access_keys import AccessKeyCache, ServerKeys, access_key_watch
from services.gateway.peers.registry_client import RegistryClient
from services.gateway.peers.resumable_watch import ResumableWatch
from services.gateway.sessions.hub import SessionHub
from tests.process_harness import ControlPlane

WATCH_LATENCY = 5.0


@pytest.fixture
def registry_only(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "server", database_url, gateway_count=0, scheduler_count=0).start()
    try:
        yield plane
    finally:
        plane.stop()


@dataclass
class Gateway:
    """What the gateway process holds: the cache, the server keys, the watch feeding them."""

    cache: AccessKeyCache
    server_keys: ServerKeys
    watch: ResumableWatch
    admin: registry_pb2_grpc.RegistryServiceStub

    async def create(self, name: str, **fields: object) -> registry_pb2.CreateAccessKeyResponse:
        return await self.admin.CreateAccessKey(registry_pb2.CreateAccessKeyRequest(name=name, **fields))  # type: ignore[arg-type]

    async def revoke(self, name: str) -> None:
        await self.admin.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name=name))


@contextlib.asynccontextmanager
async def gateway_of(plane: ControlPlane) -> AsyncIterator[Gateway]:
    address = plane.registry_ready["grpc"]
    identity = bearer.read_secret_file(plane.identities["gateway"])
    channel = service_tokens.peer_channel(address, None, identity)
    admin_channel = service_tokens.peer_channel(address, None, plane.admin_token)
    cache, server_keys = AccessKeyCache(), ServerKeys()
    watch = access_key_watch(RegistryClient(channel), cache, server_keys, SessionHub())
    task = asyncio.create_task(watch.run())
    try:
        async with asyncio.timeout(20):
            await watch.ready.wait()
        yield Gateway(cache, server_keys, watch, registry_pb2_grpc.RegistryServiceStub(admin_channel))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()
        await admin_channel.close()


async def until(condition: object, what: str, timeout: float = WATCH_LATENCY) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_a_created_key_is_granted_and_a_revoked_one_is_gone_within_the_watch_latency(
    registry_only: ControlPlane,
) -> None:
    async with gateway_of(registry_only) as gateway:
        created = await gateway.create("site-a", zone="dmz")
        key = AccessKey.parse(created.access_key_text)
        assert key.key_id == created.access_key.key_id
        assert key.server_public_key == gateway.server_keys.public_key()
        assert created.server_key_fingerprint == gateway.server_keys.fingerprint()

        await until(lambda: gateway.cache.grant(key.key_id) is not None, "the grant")
        grant = gateway.cache.grant(key.key_id)
        assert grant is not None
        assert (grant.name, grant.psk, grant.zone) == ("site-a", key.secret, "dmz")

        await gateway.revoke("site-a")
        await until(lambda: gateway.cache.grant(key.key_id) is None, "the revocation")


async def test_the_bootstrap_key_is_granted_from_the_start_and_its_file_is_private(
    registry_only: ControlPlane,
) -> None:
    path = registry_only.access_key_file
    assert path.stat().st_mode & 0o777 == 0o600
    bootstrap = read_access_key_file(path)
    async with gateway_of(registry_only) as gateway:
        grant = gateway.cache.grant(bootstrap.key_id)
        assert grant is not None and grant.name == "bootstrap" and grant.psk == bootstrap.secret
        assert bootstrap.server_public_key == gateway.server_keys.public_key()
        assert gateway.server_keys.private_keys()[0] != gateway.server_keys.public_key()
        assert gateway.server_keys.fingerprint() == fingerprint(gateway.server_keys.public_key())


async def test_an_expired_key_is_refused_at_call_time_without_any_event(registry_only: ControlPlane) -> None:
    async with gateway_of(registry_only) as gateway:
        created = await gateway.create("brief", expires_in_seconds=1)
        key_id = created.access_key.key_id
        await until(lambda: gateway.cache.grant(key_id) is not None, "the grant")
        await until(lambda: gateway.cache.grant(key_id) is None, "the expiry", timeout=5)
        listed = await gateway.admin.ListAccessKeys(registry_pb2.ListAccessKeysRequest())
        states = {k.name: k.state for k in listed.access_keys}
        assert states["brief"] == registry_pb2.ACCESS_KEY_STATE_EXPIRED


async def test_the_watch_resumes_after_a_registry_restart_and_sees_what_changed_meanwhile(
    registry_only: ControlPlane,
) -> None:
    async with gateway_of(registry_only) as gateway:
        before = await gateway.create("before")
        await until(lambda: gateway.cache.grant(before.access_key.key_id) is not None, "the first grant")
        resyncs = gateway.watch.resyncs
        registry_only.restart_registry()
        await until(lambda: gateway.watch.resyncs > resyncs, "the watch to reconnect", timeout=20)
        # the registry came back on the same port and keeps the same server key
        after = await gateway.create("after")
        await gateway.revoke("before")
        await until(lambda: gateway.cache.grant(after.access_key.key_id) is not None, "the new grant")
        await until(lambda: gateway.cache.grant(before.access_key.key_id) is None, "the revocation")
        assert AccessKey.parse(after.access_key_text).server_public_key == gateway.server_keys.public_key()


async def test_the_watch_and_the_server_keys_refuse_an_admin_token(registry_only: ControlPlane) -> None:
    """Only the gateway's identity may read secrets; even the bootstrap admin is refused."""
    admin = service_tokens.peer_channel(registry_only.registry_ready["grpc"], None, registry_only.admin_token)
    stub = registry_pb2_grpc.RegistryServiceStub(admin)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetServerKeys(registry_pb2.GetServerKeysRequest())
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stub.WatchAccessKeys(registry_pb2.WatchAccessKeysRequest()):
                break
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await admin.close()
