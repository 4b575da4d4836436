"""Rotating the server's Noise static key in the registry (ADR 0024; SQLite and PostgreSQL).

`RotateServerKey` announces a next key; `GetServerKeys` hands gateways every key accepted
now with its state and times, and the states follow the registry's clock without any
timer: announced, current from the activation, the old key retired for the window, then
gone.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from outpost.access_key import AccessKey
from outpost.registry.v1 import registry_pb2
from outpost.session.handshake import fingerprint
from tests.integration.test_registry_support import ManualClock, running_registry

CURRENT = registry_pb2.SERVER_KEY_STATE_CURRENT
NEXT = registry_pb2.SERVER_KEY_STATE_NEXT
RETIRED = registry_pb2.SERVER_KEY_STATE_RETIRED


def rotate(activate_in: int, retire_after: int) -> registry_pb2.RotateServerKeyRequest:
    return registry_pb2.RotateServerKeyRequest(activate_in_seconds=activate_in, retire_after_seconds=retire_after)


async def server_keys(stub) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    reply = await stub.GetServerKeys(registry_pb2.GetServerKeysRequest())
    return [(k.fingerprint, k.state) for k in reply.keys]


async def test_a_rotation_announces_activates_and_retires_by_the_registry_clock(
    database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock, secret_key_file=tmp_path / "secret.key") as registry:
        old = (await registry.stub.GetServerInfo(registry_pb2.GetServerInfoRequest())).server_key_fingerprint
        rotated = await registry.stub.RotateServerKey(rotate(60, 600))
        new = rotated.next_fingerprint
        assert rotated.current_fingerprint == old and new != old
        assert rotated.current_retires_at.ToSeconds() == rotated.activates_at.ToSeconds() + 600

        assert await server_keys(registry.stub) == [(old, CURRENT), (new, NEXT)]
        info = await registry.stub.GetServerInfo(registry_pb2.GetServerInfoRequest())
        assert (info.server_key_fingerprint, info.next_server_key_fingerprint) == (old, new)
        # Access keys made while the next key is only announced pin the current one.
        created = await registry.stub.CreateAccessKey(registry_pb2.CreateAccessKeyRequest(name="during"))
        assert fingerprint(AccessKey.parse(created.access_key_text).server_public_key or b"") == old

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.stub.RotateServerKey(rotate(60, 600))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "already announced" in (refused.value.details() or "")

        clock.advance(60)
        assert await server_keys(registry.stub) == [(new, CURRENT), (old, RETIRED)]
        info = await registry.stub.GetServerInfo(registry_pb2.GetServerInfoRequest())
        assert (info.server_key_fingerprint, info.next_server_key_fingerprint) == (new, "")
        created = await registry.stub.CreateAccessKey(registry_pb2.CreateAccessKeyRequest(name="after"))
        assert fingerprint(AccessKey.parse(created.access_key_text).server_public_key or b"") == new

        clock.advance(600)
        assert await server_keys(registry.stub) == [(new, CURRENT)]


async def test_the_rotation_survives_a_restart_and_the_keys_stay_private(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    secret = tmp_path / "secret.key"
    async with running_registry(database_url, clock=clock, secret_key_file=secret) as registry:
        rotated = await registry.stub.RotateServerKey(rotate(30, 30))
        before = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys
    clock.advance(31)
    async with running_registry(database_url, clock=clock, secret_key_file=secret) as registry:
        after = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys
        assert [(k.fingerprint, k.state) for k in after] == [
            (rotated.next_fingerprint, CURRENT),
            (rotated.current_fingerprint, RETIRED),
        ]
        assert {k.private_key for k in after} == {k.private_key for k in before}


async def test_bad_windows_are_refused_and_change_nothing(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=tmp_path / "secret.key") as registry:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.stub.RotateServerKey(rotate(10**12, 0))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [s for _, s in await server_keys(registry.stub)] == [CURRENT]


async def test_a_viewer_cannot_rotate_the_server_key(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=tmp_path / "secret.key") as registry:
        async with registry.stub_as(await registry.token("eve", "viewer")) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.RotateServerKey(rotate(60, 60))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert [s for _, s in await server_keys(registry.stub)] == [CURRENT]
