"""Registering proves the install password *for this collector's key* (ADR 0013).

The attack: the argon2 verifier in every hello acted as a bearer value. Copied from
another collector's hello (or a database) and sent with the attacker's own key, it got
that key registered when the admin typed the real password. The verifier is now argon2id
over the password bound to the username and public key, and the registry recomputes it
for the key on record. And an admin who names the key's fingerprint registers that key
or nothing. Registry in-process, `FakeCollector`s, SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from outpost.registry.v1 import registry_pb2
from tests.integration.test_registry_support import (
    CANARY_PASSWORD,
    CS,
    FAST_HASHER,
    USERNAME,
    FakeCollector,
    RunningRegistry,
    announce,
    get,
    register,
    running_registry,
)
from tests.process_harness import Collector, ControlPlane

PASSWORD = "correct horse battery staple"


async def test_a_verifier_copied_onto_another_key_cannot_be_registered(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        genuine = FakeCollector("edge-7")  # its hello was captured; it has not connected here yet
        impostor = await announce(registry, "edge-7", verifier=genuine.verifier)  # another key, same verifier
        assert impostor.public_key != genuine.public_key

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(registry, "edge-7", password=CANARY_PASSWORD)  # the admin types the real password

        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "it stays pending" in (refused.value.details() or "")
        assert (await get(registry, "edge-7")).state == CS.COLLECTOR_STATE_PENDING


async def test_the_collectors_own_verifier_registers_with_the_same_password(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7")
        registered = await register(registry, "edge-7", password=CANARY_PASSWORD)
        assert registered.state == CS.COLLECTOR_STATE_ENABLED


async def test_a_verifier_of_the_bare_password_no_longer_registers(database_url: str) -> None:
    """What collectors before ADR 0013 sent: a pending one must be upgraded (it then re-announces)."""
    async with running_registry(database_url) as registry:
        await announce(registry, "edge-7", verifier=FAST_HASHER.hash(CANARY_PASSWORD))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(registry, "edge-7")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def _register_with_fingerprint(registry: RunningRegistry, name: str, fingerprint: str) -> registry_pb2.Collector:
    response = await registry.stub.RegisterCollector(
        registry_pb2.RegisterCollectorRequest(
            name=name, username=USERNAME, password=CANARY_PASSWORD, enable=True, fingerprint=fingerprint
        )
    )
    collector: registry_pb2.Collector = response.collector
    return collector


async def test_registration_naming_another_fingerprint_is_refused_and_changes_nothing(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        checked_elsewhere = FakeCollector("edge-7").fingerprint

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _register_with_fingerprint(registry, "edge-7", checked_elsewhere)

        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = refused.value.details() or ""
        assert f"has key {collector.fingerprint}, not {checked_elsewhere}" in details
        assert (await get(registry, "edge-7")).state == CS.COLLECTOR_STATE_PENDING


async def test_registration_naming_the_collectors_fingerprint_registers_it(database_url: str) -> None:
    async with running_registry(database_url) as registry:
        collector = await announce(registry, "edge-7")
        registered = await _register_with_fingerprint(registry, "edge-7", collector.fingerprint)
        assert (registered.state, registered.fingerprint) == (CS.COLLECTOR_STATE_ENABLED, collector.fingerprint)


def test_outpostctl_registers_only_the_key_whose_fingerprint_the_admin_gives(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A real collector computes the bound verifier; outpostctl --fingerprint is checked."""
    collector = Collector(tmp_path, "edge-a", [control_plane.url("grpc")], PASSWORD).start()
    try:
        fingerprint = collector.wait_state("pending")["fingerprint"]
        look_alike = FakeCollector("edge-a").fingerprint

        def register_with(fingerprint: str) -> str:
            result = control_plane.ctl(
                "collectors",
                "register",
                "edge-a",
                "--username",
                collector.username,
                "--password-stdin",
                "--enable",
                "--fingerprint",
                fingerprint,
                stdin=PASSWORD + "\n",
                check=False,
            )
            assert (result.returncode == 0) == (fingerprint != look_alike), result.stderr
            return result.stderr

        refused = register_with(look_alike)
        assert f"has key {fingerprint}, not {look_alike}" in refused
        assert [c["state"] for c in control_plane.collectors()] == ["pending"]

        register_with(fingerprint)
        collector.wait_state("enabled")
    finally:
        collector.stop()
