"""Rotating an access key in the registry (ADR 0024; in-process, SQLite and PostgreSQL).

`RotateAccessKey` gives a name a new key (new id and secret, same zone) and keeps the old
one valid until the overlap ends; gateways learn from the watch which key replaced which.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from outpost.access_key import AccessKey
from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_access_keys import (
    CHANGED,
    EXPIRED,
    REVOKED,
    VALID,
    create,
    key_files,
    watch_until_bookmark,
)
from tests.integration.test_registry_support import ManualClock, running_registry


def rotate(name: str, overlap: int = 3600, expires_in: int = 0) -> registry_pb2.RotateAccessKeyRequest:
    return registry_pb2.RotateAccessKeyRequest(name=name, overlap_seconds=overlap, expires_in_seconds=expires_in)


async def by_id(stub) -> dict[str, registry_pb2.AccessKeyInfo]:  # type: ignore[no-untyped-def]
    reply = await stub.ListAccessKeys(registry_pb2.ListAccessKeysRequest(include_revoked=True))
    return {k.key_id: k for k in reply.access_keys}


async def test_a_rotation_keeps_the_old_key_for_the_overlap_then_only_the_new_one(
    database_url: str, tmp_path: Path
) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock, **key_files(tmp_path)) as registry:
        created = await registry.stub.CreateAccessKey(create("site", zone="dmz"))
        old = AccessKey.parse(created.access_key_text)
        rotated = await registry.stub.RotateAccessKey(rotate("site", overlap=600))
        new = AccessKey.parse(rotated.access_key_text)
        assert new.key_id != old.key_id and new.secret != old.secret
        assert new.server_public_key == old.server_public_key
        assert rotated.access_key.zone == "dmz" and rotated.access_key.name == "site"
        assert rotated.replaced.key_id == old.key_id and rotated.replaced.replaced_by_key_id == new.key_id
        assert rotated.replaced.expires_at.ToSeconds() == rotated.access_key.created_at.ToSeconds() + 600

        keys = await by_id(registry.stub)
        assert (keys[old.key_id].state, keys[new.key_id].state) == (VALID, VALID)

        # Gateways hear the successor before (at a lower revision than) the replacement.
        events = [e for e in await watch_until_bookmark(registry.stub) if e.kind == CHANGED]
        order = [e.key_id for e in events]
        assert order.index(new.key_id) < order.index(old.key_id)
        replaced = next(e for e in events if e.key_id == old.key_id)
        assert replaced.replaced_by_key_id == new.key_id and len(replaced.psk) == 32
        assert replaced.expires_at.ToSeconds() == rotated.replaced.expires_at.ToSeconds()

        clock.advance(601)
        keys = await by_id(registry.stub)
        assert (keys[old.key_id].state, keys[new.key_id].state) == (EXPIRED, VALID)

        # The name belongs to the new key: a create is refused, a second rotation replaces the new one.
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await registry.stub.CreateAccessKey(create("site"))
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
        again = await registry.stub.RotateAccessKey(rotate("site", overlap=60))
        assert again.replaced.key_id == new.key_id


async def test_the_overlap_never_extends_a_key_and_must_be_positive(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        created = await registry.stub.CreateAccessKey(create("short", expires_in_seconds=120))
        rotated = await registry.stub.RotateAccessKey(rotate("short", overlap=86400))
        assert rotated.replaced.expires_at.ToSeconds() == created.access_key.expires_at.ToSeconds()
        assert not rotated.access_key.HasField("expires_at")

        await registry.stub.CreateAccessKey(create("other"))
        with pytest.raises(grpc.aio.AioRpcError) as zero:
            await registry.stub.RotateAccessKey(rotate("other", overlap=0))
        assert zero.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "overlap" in (zero.value.details() or "")


async def test_unknown_revoked_and_expired_names_are_refused_clearly(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock, **key_files(tmp_path)) as registry:
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await registry.stub.RotateAccessKey(rotate("nobody"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no access key named 'nobody'" in (unknown.value.details() or "")

        await registry.stub.CreateAccessKey(create("gone"))
        await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="gone"))
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await registry.stub.RotateAccessKey(rotate("gone"))
        assert revoked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "is revoked" in (revoked.value.details() or "")

        await registry.stub.CreateAccessKey(create("stale", expires_in_seconds=60))
        clock.advance(61)
        with pytest.raises(grpc.aio.AioRpcError) as expired:
            await registry.stub.RotateAccessKey(rotate("stale"))
        assert expired.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "has expired" in (expired.value.details() or "")


async def test_revoking_a_rotated_name_revokes_both_keys(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        old = AccessKey.parse((await registry.stub.CreateAccessKey(create("both"))).access_key_text)
        new = AccessKey.parse((await registry.stub.RotateAccessKey(rotate("both"))).access_key_text)
        await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="both"))
        keys = await by_id(registry.stub)
        assert (keys[old.key_id].state, keys[new.key_id].state) == (REVOKED, REVOKED)
        events = {e.key_id: e for e in await watch_until_bookmark(registry.stub) if e.kind == CHANGED}
        assert events[old.key_id].revoked and events[new.key_id].revoked
        # The name is free again.
        await registry.stub.CreateAccessKey(create("both"))
