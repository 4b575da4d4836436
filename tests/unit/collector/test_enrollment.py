"""The collector's side of zone enrollment tokens (ADR 0022): sent until registered, never after.

The supervisor runs against in-memory gateways with a real `ServerSession`; `decide`
plays the registry (enrolls when the hello carries the token, or refuses it).
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from outpost.access_key import AccessKey, new_key_id, new_secret, write_access_key_file
from outpost.agent.v1 import agent_pb2
from outpost.backoff import Backoff
from outpost.enrollment_token import EnrollmentToken, write_enrollment_token_file
from outpost.session.server import AuthDecision, ServerState
from services.collector.app import parse_settings
from services.collector.domain.server_url import parse_server_url
from services.collector.status import StatusFile
from services.collector.store.enrollment import RegistrationRecord
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile, Supervisor

from .conftest import PASSWORD, WAIT, ParkedSleeps
from .memory_gateway import MemoryGateway
from .test_supervisor import routes

R = agent_pb2.DisconnectReason
A = parse_server_url("grpc://gw-a")
TOKEN = EnrollmentToken("et_0123456789abcdef", bytes(range(32)))
MAX_BACKOFF = 12.0


def enrolling_registry(hello: agent_pb2.Hello) -> AuthDecision:
    """Enabled when the hello brings the token (first contact) or already enrolled (later)."""
    return AuthDecision(accepted=True, state=ServerState.ENABLED, name=hello.name, zone="lab")


def supervisor(
    profile: CollectorProfile,
    identity: Identity,
    identity_store: IdentityStore,
    status: StatusFile,
    gateway: MemoryGateway,
    sleeps: ParkedSleeps,
) -> Supervisor:
    return Supervisor(
        servers=[A],
        profile=replace(profile, enrollment_token=TOKEN.encode()),
        identity=identity,
        identity_store=identity_store,
        status=status,
        open_transport=routes({A: gateway}),
        backoff=Backoff(0.5, MAX_BACKOFF, random.Random(5)),
        handshake_timeout=5.0,
        sleep=sleeps,
        registration=RegistrationRecord(identity_store.data_dir),
    )


async def stop(task: asyncio.Task[None], gateway: MemoryGateway) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await task
    await gateway.stop()


async def test_the_token_is_sent_until_the_server_registers_the_collector_and_never_after_a_restart(
    profile: CollectorProfile, identity: Identity, identity_store: IdentityStore, status: StatusFile
) -> None:
    gateway = MemoryGateway(decide=enrolling_registry)
    sleeps = ParkedSleeps()
    with capture_logs() as logs:
        task = asyncio.create_task(supervisor(profile, identity, identity_store, status, gateway, sleeps).run())
        first = await gateway.wait_for_state(ServerState.ENABLED)
        await first.collector_idle()
    assert first.hello.enrollment_token == TOKEN.encode()
    record = identity_store.data_dir / "registered"
    assert record.exists() and (record.stat().st_mode & 0o777) == 0o600
    assert [e["state"] for e in logs if e["event"] == "enrollment_complete"] == ["enabled"]

    await first.command(lambda s: s.shutdown())
    await sleeps.parked()
    sleeps.wake()
    second = await gateway.wait_for_state(ServerState.ENABLED, index=1)
    assert second.hello.enrollment_token == ""
    await stop(task, gateway)

    restarted_gateway = MemoryGateway(decide=enrolling_registry)
    restarted = supervisor(profile, identity, identity_store, status, restarted_gateway, ParkedSleeps())
    task = asyncio.create_task(restarted.run())
    third = await restarted_gateway.wait_for_state(ServerState.ENABLED)
    assert third.hello.enrollment_token == ""
    await stop(task, restarted_gateway)


async def test_a_refused_token_waits_minutes_and_says_what_to_do(
    profile: CollectorProfile, identity: Identity, identity_store: IdentityStore, status: StatusFile
) -> None:
    message = "enrollment token 'site-a' is used up (used 5 of 5): ask an admin for a new token"
    gateway = MemoryGateway(
        decide=lambda hello: AuthDecision(
            accepted=False, refusal=R.DISCONNECT_REASON_ENROLLMENT_REFUSED, message=message, retry_after=300
        )
    )
    sleeps = ParkedSleeps()
    with capture_logs() as logs:
        task = asyncio.create_task(supervisor(profile, identity, identity_store, status, gateway, sleeps).run())
        assert await sleeps.parked() == 300.0
    [loud] = [e for e in logs if e["event"] == "reconnect_needs_operator"]
    assert loud["log_level"] == "error"
    assert loud["reason"] == "DISCONNECT_REASON_ENROLLMENT_REFUSED"
    assert loud["message"] == message
    assert "enrollment-tokens" in loud["advice"]
    assert not (identity_store.data_dir / "registered").exists()
    await stop(task, gateway)


# --- settings -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OUTPOST_COLLECTOR_") or key == "OUTPOST_ENROLLMENT_TOKEN":
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    monkeypatch.setenv("PYTEST_PASSWORD_FILE", str(path))
    return path


def args(*extra: str) -> list[str]:
    password = Path(os.environ["PYTEST_PASSWORD_FILE"])
    access_key = password.with_name("access.key")
    write_access_key_file(access_key, AccessKey(new_key_id(), new_secret()))
    return [
        *("--server", "grpc://gw-1", "--name", "edge-7", "--username", "svc"),
        *("--password-file", str(password), "--access-key-file", str(access_key)),
        *extra,
    ]


def test_with_a_token_file_the_zone_is_left_to_the_token(tmp_path: Path) -> None:
    path = tmp_path / "enroll.token"
    write_enrollment_token_file(path, TOKEN)

    with_token = parse_settings(args("--enrollment-token-file", str(path)))
    with_zone = parse_settings(args("--enrollment-token-file", str(path), "--zone", "lab"))
    without = parse_settings(args())

    assert (with_token.enrollment_token, with_token.zone) == (TOKEN, "")
    assert (with_zone.enrollment_token, with_zone.zone) == (TOKEN, "lab")
    assert (without.enrollment_token, without.zone) == (None, "default")
    assert TOKEN.encode() not in repr(with_token)


def test_the_token_may_come_from_the_environment_which_keeps_it_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPOST_ENROLLMENT_TOKEN", TOKEN.encode())
    settings = parse_settings(args())
    assert settings.enrollment_token == TOKEN
    assert "OUTPOST_ENROLLMENT_TOKEN" not in os.environ


def test_an_unusable_token_file_ends_the_start_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.token"
    bad.write_text("outpost-ak1.not-a-token\n")
    with pytest.raises(SystemExit) as exited:
        parse_settings(args("--enrollment-token-file", str(bad)))
    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "--enrollment-token-file" in line and "outpost-et1" in line
