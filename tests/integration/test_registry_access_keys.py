"""Access keys and the server key in the registry (in-process, SQLite and PostgreSQL).

The registry is served on a real port; callers present the credential the policy table
asks for (admins a token, the watch and GetServerKeys the gateway's identity).
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from outpost.access_key import AccessKey, read_access_key_file, write_access_key_file
from outpost.registry.v1 import registry_pb2
from outpost.session.handshake import fingerprint
from services.registry.app import StartupError
from services.registry.domain.server_keys import public_of
from services.registry.store.models import AccessKeyRow, ServerKeyRow
from tests.integration.test_registry_support import ManualClock, running_registry

VALID = registry_pb2.ACCESS_KEY_STATE_VALID
EXPIRED = registry_pb2.ACCESS_KEY_STATE_EXPIRED
REVOKED = registry_pb2.ACCESS_KEY_STATE_REVOKED
BOOKMARK = registry_pb2.ACCESS_KEY_EVENT_KIND_BOOKMARK
CHANGED = registry_pb2.ACCESS_KEY_EVENT_KIND_CHANGED


def create(name: str, zone: str = "", expires_in_seconds: int = 0) -> registry_pb2.CreateAccessKeyRequest:
    return registry_pb2.CreateAccessKeyRequest(name=name, zone=zone, expires_in_seconds=expires_in_seconds)


async def listing(stub, *, include_revoked: bool = False) -> dict[str, registry_pb2.AccessKeyInfo]:  # type: ignore[no-untyped-def]
    reply = await stub.ListAccessKeys(registry_pb2.ListAccessKeysRequest(include_revoked=include_revoked))
    return {k.name: k for k in reply.access_keys}


async def watch_until_bookmark(stub, since: int = 0) -> list[registry_pb2.AccessKeyEvent]:  # type: ignore[no-untyped-def]
    events = []
    async with asyncio.timeout(10):
        async for event in stub.WatchAccessKeys(registry_pb2.WatchAccessKeysRequest(since_revision=since)):
            events.append(event)
            if event.kind == BOOKMARK:
                break
    return events


def key_files(tmp_path: Path) -> dict[str, Path]:
    return {"secret_key_file": tmp_path / "registry-secret.key"}


async def test_create_returns_the_key_once_pinning_the_current_server_key(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        created = await registry.stub.CreateAccessKey(create("site-a", zone="dmz", expires_in_seconds=3600))
        key = AccessKey.parse(created.access_key_text)
        info = await registry.stub.GetServerInfo(registry_pb2.GetServerInfoRequest())
        keys = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys

        assert key.key_id == created.access_key.key_id and key.key_id.startswith("ak_")
        assert [k.state for k in keys] == [registry_pb2.SERVER_KEY_STATE_CURRENT]
        assert key.server_public_key == keys[0].public_key
        assert public_of(keys[0].private_key) == keys[0].public_key
        assert created.server_key_fingerprint == info.server_key_fingerprint == fingerprint(keys[0].public_key)
        shown = created.access_key
        assert (shown.name, shown.zone, shown.state, shown.created_by) == ("site-a", "dmz", VALID, "alice")
        assert shown.HasField("expires_at") and not shown.HasField("revoked_at")


async def test_the_server_key_survives_restarts_and_is_stored_encrypted(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        first = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys[0]
        async with registry.server.store.read() as tx:
            row = await tx.session.scalar(sa.select(ServerKeyRow))
        assert row is not None and first.private_key not in bytes(row.private_key)
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        again = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys
    assert [(k.public_key, k.private_key) for k in again] == [(first.public_key, first.private_key)]


async def test_another_secret_key_file_refuses_to_start_naming_the_problem(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)):
        pass
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    with pytest.raises(StartupError, match="server key was encrypted under secret key"):
        async with running_registry(database_url, secret_key_file=other):
            pass


async def test_a_name_is_unique_among_live_keys_and_free_again_once_revoked(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        first = await registry.stub.CreateAccessKey(create("site"))
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await registry.stub.CreateAccessKey(create("site"))
        assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
        revoked = await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="site"))
        assert (revoked.access_key.state, revoked.access_key.revoked_by) == (REVOKED, "alice")
        second = await registry.stub.CreateAccessKey(create("site"))
        assert second.access_key.key_id != first.access_key.key_id

        live = await listing(registry.stub)
        every = [
            k
            for k in (
                await registry.stub.ListAccessKeys(registry_pb2.ListAccessKeysRequest(include_revoked=True))
            ).access_keys
            if k.name == "site"
        ]
        assert live["site"].key_id == second.access_key.key_id
        assert sorted(k.state for k in every) == sorted([VALID, REVOKED])
        # Revoking again shows the revoked key; an unknown name is NOT_FOUND.
        await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="site"))
        again = await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="site"))
        assert again.access_key.state == REVOKED
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="never"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_two_creates_of_one_name_at_once_make_exactly_one_key(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        results = await asyncio.gather(
            *(registry.stub.CreateAccessKey(create("raced")) for _ in range(5)), return_exceptions=True
        )
        made = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(made) == 1 and len(refused) == 4
        assert {r.code() for r in refused} == {grpc.StatusCode.ALREADY_EXISTS}


async def test_expiry_is_judged_by_the_registry_clock(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    async with running_registry(database_url, clock=clock, **key_files(tmp_path)) as registry:
        await registry.stub.CreateAccessKey(create("brief", expires_in_seconds=60))
        assert (await listing(registry.stub))["brief"].state == VALID
        clock.advance(61)
        assert (await listing(registry.stub))["brief"].state == EXPIRED


async def test_bad_names_zones_and_expiries_are_refused(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        for request in (
            create(""),
            create("has space"),
            create("z", zone="x" * 300),
            create("e", expires_in_seconds=10**9),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await registry.stub.CreateAccessKey(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_watch_lists_every_key_then_resumes_from_a_revision(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        a = AccessKey.parse((await registry.stub.CreateAccessKey(create("a", zone="dmz"))).access_key_text)
        b = AccessKey.parse((await registry.stub.CreateAccessKey(create("b"))).access_key_text)
        listed = await watch_until_bookmark(registry.stub)
        assert [(e.kind, e.key_id, e.psk, e.zone, e.revoked) for e in listed[:-1]] == [
            (CHANGED, a.key_id, a.secret, "dmz", False),
            (CHANGED, b.key_id, b.secret, "", False),
        ]
        cursor = listed[-1].revision
        assert cursor == listed[-2].revision

        await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="a"))
        c = AccessKey.parse((await registry.stub.CreateAccessKey(create("c"))).access_key_text)
        missed = await watch_until_bookmark(registry.stub, since=cursor)
        assert [(e.key_id, e.revoked, e.psk) for e in missed[:-1]] == [
            (a.key_id, True, b""),
            (c.key_id, False, c.secret),
        ]
        assert missed[-1].revision == missed[-2].revision > cursor


async def test_a_live_watch_hears_a_revocation_at_once(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        created = await registry.stub.CreateAccessKey(create("live"))
        stream = registry.stub.WatchAccessKeys(registry_pb2.WatchAccessKeysRequest())
        try:
            async with asyncio.timeout(5):
                while (await stream.read()).kind != BOOKMARK:
                    pass
                await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="live"))
                event = await stream.read()
                while event.kind == BOOKMARK:
                    event = await stream.read()
        finally:
            stream.cancel()
        assert (event.key_id, event.revoked, event.psk) == (created.access_key.key_id, True, b"")


async def test_secrets_are_encrypted_at_rest_and_bound_to_their_row(database_url: str, tmp_path: Path) -> None:
    """A stolen database yields no PSK; a ciphertext moved to another key's row is not accepted there."""
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        a = AccessKey.parse((await registry.stub.CreateAccessKey(create("a"))).access_key_text)
        b = AccessKey.parse((await registry.stub.CreateAccessKey(create("b"))).access_key_text)
        async with registry.server.store.write(exclusive=True) as tx:
            rows = {r.key_id: r for r in await tx.session.scalars(sa.select(AccessKeyRow))}
            assert all(a.secret not in bytes(r.secret) and b.secret not in bytes(r.secret) for r in rows.values())
            newest = max(r.revision for r in rows.values())
            await tx.session.execute(
                sa.update(AccessKeyRow)
                .where(AccessKeyRow.key_id == b.key_id)
                .values(secret=rows[a.key_id].secret, nonce=rows[a.key_id].nonce, revision=newest + 1)
            )
        listed = {e.key_id: e for e in await watch_until_bookmark(registry.stub) if e.kind == CHANGED}
        assert listed[a.key_id].psk == a.secret
        assert (listed[b.key_id].psk, listed[b.key_id].revoked) == (b"", True)  # fails closed for that key only


async def test_the_first_start_writes_the_bootstrap_key_file_private(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "data" / "access.key"
    async with running_registry(database_url, bootstrap_access_key_file=path, **key_files(tmp_path)) as registry:
        key = read_access_key_file(path)
        shown = (await listing(registry.stub))["bootstrap"]
        keys = (await registry.stub.GetServerKeys(registry_pb2.GetServerKeysRequest())).keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (shown.key_id, shown.created_by, shown.state) == (key.key_id, "bootstrap", VALID)
    assert key.server_public_key == keys[0].public_key
    # A restart leaves the file and the keys alone.
    text = path.read_text()
    async with running_registry(database_url, bootstrap_access_key_file=path, **key_files(tmp_path)) as registry:
        assert list(await listing(registry.stub)) == ["bootstrap"]
    assert path.read_text() == text


async def test_a_pre_provisioned_key_file_is_registered_not_replaced(database_url: str, tmp_path: Path) -> None:
    """A Kubernetes Secret mounted before the first start keeps the collectors given it working."""
    path = tmp_path / "mounted" / "access.key"
    given = AccessKey("ak_fromsecret", os.urandom(32))
    write_access_key_file(path, given)
    async with running_registry(database_url, bootstrap_access_key_file=path, **key_files(tmp_path)) as registry:
        shown = (await listing(registry.stub))["bootstrap"]
        listed = {e.key_id: e for e in await watch_until_bookmark(registry.stub) if e.kind == CHANGED}
    assert shown.key_id == given.key_id
    assert listed[given.key_id].psk == given.secret
    assert read_access_key_file(path) == given


async def test_a_malformed_bootstrap_file_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "access.key"
    path.write_text("not-a-key\n")
    with pytest.raises(StartupError, match="cannot use the access key file"):
        async with running_registry(database_url, bootstrap_access_key_file=path, **key_files(tmp_path)):
            pass


async def test_no_bootstrap_once_any_key_exists(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        await registry.stub.CreateAccessKey(create("mine"))
        await registry.stub.RevokeAccessKey(registry_pb2.RevokeAccessKeyRequest(name="mine"))
    path = tmp_path / "late" / "access.key"
    async with running_registry(database_url, bootstrap_access_key_file=path, **key_files(tmp_path)) as registry:
        assert await listing(registry.stub) == {}
    assert not path.exists()


async def test_a_viewer_lists_but_cannot_create_or_revoke_and_sees_no_secret(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, **key_files(tmp_path)) as registry:
        created = await registry.stub.CreateAccessKey(create("guarded"))
        viewer = await registry.token("vera", "viewer")
        operator = await registry.token("otto", "operator")
        for secret in (viewer, operator):
            async with registry.stub_as(secret) as stub:
                listed = await stub.ListAccessKeys(registry_pb2.ListAccessKeysRequest(include_revoked=True))
                assert created.access_key.key_id in {k.key_id for k in listed.access_keys}
                secret_part = created.access_key_text.split(".")[2]
                assert secret_part.encode() not in listed.SerializeToString()
                assert AccessKey.parse(created.access_key_text).secret not in listed.SerializeToString()
                for call, request in (
                    (stub.CreateAccessKey, create("sneaky")),
                    (stub.RevokeAccessKey, registry_pb2.RevokeAccessKeyRequest(name="guarded")),
                    (stub.GetServerKeys, registry_pb2.GetServerKeysRequest()),
                ):
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await call(request)
                    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await listing(registry.stub))["guarded"].state == VALID
        assert "sneaky" not in await listing(registry.stub)
