"""Where the conformance suite runs: a control plane it starts, or any gateway you name.

By default (as `make test` runs it) a registry, scheduler and gateway are started on
loopback (SQLite, `tests/process_harness.py`) and stopped at the end. Against another
deployment:

    OUTPOST_REGISTRY_ADDRESS=HOST:PORT OUTPOST_SCHEDULER_ADDRESS=HOST:PORT \\
    OUTPOST_GATEWAY_ADDRESS=HOST:PORT OUTPOST_TOKEN_FILE=admin.token \\
    pytest tests/conformance --gateway tcp://HOST:6600 --access-key-file access.key

The access key (docs/protocol.md §12.1; `outpostctl access-keys create conformance`; or
the environment variable `OUTPOST_ACCESS_KEY`) makes every session sealed; with the
server's key in it, the collectors pin it (IK), and the first-contact tests strip it
(XX). Without one the suite speaks the unsealed protocol and skips the sealed-only tests,
naming why.

The suite registers and enables the collectors it creates (names `conf-...`, zone
`conformance`), and creates and runs discoveries named `conf-...` that target
192.0.2.0/24 (TEST-NET-1: the minimal collectors report devices there, they scan
nothing). It needs an admin token with the operator role; outpostctl reads every setting
from its usual environment (`OUTPOST_SERVER`, `OUTPOST_CA_FILE`, ...).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OUTPOSTCTL = Path(sys.executable).parent / "outpostctl"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gateway",
        default=None,
        metavar="tcp://HOST:PORT",
        help="conformance suite: the gateway's TCP agent listener (default: start a control plane on loopback)",
    )
    parser.addoption(
        "--access-key-file",
        default=None,
        metavar="FILE",
        help="conformance suite: the access key the collectors seal with (default: $OUTPOST_ACCESS_KEY)",
    )


@dataclass
class Admin:
    """outpostctl as an operator runs it; `background` runs it while a collector keeps heartbeating."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=2))

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(OUTPOSTCTL), *self.args, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **self.env},
        )
        if result.returncode != 0:
            raise AssertionError(
                f"outpostctl {' '.join(args)} failed ({result.returncode}): {result.stderr}{result.stdout}"
            )
        return result

    def background(self, *args: str, stdin: str | None = None) -> Future[subprocess.CompletedProcess[str]]:
        return self.pool.submit(self.run, *args, stdin=stdin)


@dataclass
class Target:
    url: str
    admin: Admin
    access_key: str | None = None
    """The access key's text (docs/protocol.md §12.1): None runs the unsealed protocol."""
    why_unsealed: str = ""


def _given_access_key(request: pytest.FixtureRequest) -> str | None:
    path = request.config.getoption("--access-key-file", default=None)
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("OUTPOST_ACCESS_KEY") or None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = request.config.getoption("--gateway", default=None)
    if url:
        key = _given_access_key(request)
        yield Target(url, Admin(), key, "" if key else "no access key given (--access-key-file or OUTPOST_ACCESS_KEY)")
        return
    from tests.process_harness import ControlPlane

    workdir = tmp_path_factory.mktemp("conformance")
    plane = ControlPlane(workdir / "server", f"sqlite+aiosqlite:///{workdir / 'outpost.db'}").start()
    try:
        admin = Admin(
            args=[
                "--registry",
                plane.registry_ready["grpc"],
                "--gateway",
                plane.gateway_ready["admin"],
                "--scheduler",
                plane.scheduler_ready["grpc"],
            ],
            env={"OUTPOST_TOKEN": plane.admin_token, "OUTPOST_CONFIG": str(workdir / "outpostctl.json")},
        )
        key, why = _given_access_key(request), ""
        if key is None:
            key, why = local_access_key(plane.access_key_file, admin)
        yield Target(plane.url("tcp"), admin, key, why)
    finally:
        plane.stop()


def local_access_key(bootstrap: Path, admin: Admin) -> tuple[str | None, str]:
    """The access key of the control plane the suite started: its bootstrap key file, else a new one."""
    if bootstrap.exists():
        return bootstrap.read_text().strip(), ""
    try:
        created = admin.run("access-keys", "create", f"conformance-{os.getpid()}")
    except AssertionError as exc:
        return None, f"the local control plane has no bootstrap access key and cannot create one ({exc})"
    for word in created.stdout.split():
        if word.startswith("outpost-ak1."):
            return word, ""
    return None, f"outpostctl access-keys create printed no access key: {created.stdout!r}"
