"""Fixtures for the collector's unit tests: an identity, a profile, a status file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from outpost.ready import read_ready_file
from services.collector.domain.credentials import password_verifier
from services.collector.status import StatusFile
from services.collector.store.identity import Identity, IdentityStore
from services.collector.supervisor import CollectorProfile

PASSWORD = "correct horse battery staple"
USERNAME = "svc-outpost"
KEY = bytes(range(32))
"""A public key for verifier tests that need no key pair."""
WAIT = 5.0


@pytest.fixture(scope="session")
def verifier() -> str:
    return password_verifier(PASSWORD, username=USERNAME, public_key=KEY)


@pytest.fixture
def identity_store(tmp_path: Path) -> IdentityStore:
    return IdentityStore(tmp_path / "data")


@pytest.fixture
def identity(identity_store: IdentityStore) -> Identity:
    return identity_store.load_or_create()


@pytest.fixture
def profile(identity: Identity) -> CollectorProfile:
    verifier = password_verifier(PASSWORD, username=USERNAME, public_key=identity.public_key)
    return CollectorProfile(name="edge-7", zone="lab", username=USERNAME, password_verifier=verifier)


@pytest.fixture
def status(tmp_path: Path, identity: Identity) -> StatusFile:
    return StatusFile(str(tmp_path / "collector.status"), identity.instance_uid, identity.fingerprint)


def read_status(status: StatusFile) -> dict[str, Any]:
    assert status.path is not None
    return read_ready_file(status.path) or {}


class ParkedSleeps:
    """The supervisor's `sleep`: each call parks until the test has seen its delay and woken it."""

    def __init__(self) -> None:
        self._parked: asyncio.Queue[tuple[float, asyncio.Event]] = asyncio.Queue()
        self._wake: asyncio.Event | None = None
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        wake = asyncio.Event()
        await self._parked.put((delay, wake))
        await wake.wait()

    async def parked(self) -> float:
        """Wait until the supervisor sleeps; return the delay it chose (it stays parked)."""
        async with asyncio.timeout(WAIT):
            delay, self._wake = await self._parked.get()
        self.delays.append(delay)
        return delay

    def wake(self) -> None:
        assert self._wake is not None, "nothing parked"
        self._wake.set()
        self._wake = None
