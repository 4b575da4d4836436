"""deploy/systemd/: the units verify, hold the hardening and credentials policy, and boot.

`systemd-analyze verify` and `security --offline` read the units as systemd would (no PID 1
needed; `make system-deps` installs the package). The policy tests read the parsed units:
every unit carries the hardening set, secrets reach a process only as credentials
(`LoadCredential=` + `%d/NAME`), never in `Environment=`, an env file or a command line,
and CAP_NET_RAW only comes with the ICMP drop-in. The boot test starts the units as local
processes with exactly their configuration (tests/deploy/units.py) against a PostgreSQL
database of its own: migrations through ExecStartPre=, then the three services, then
`outpost-collector@lab` from the example env file, registered with outpostctl, running a
discovery whose result must reach the inventory. A unit passing a flag or a variable the
code does not read fails there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from outpost.access_key import AccessKey, new_key_id, new_secret
from services.collector.discovery import icmp
from tests.conftest import fresh_postgres_database
from tests.deploy import pods
from tests.deploy.pods import Network
from tests.deploy.units import (
    COLLECTOR,
    INSTALL_BIN,
    SERVICES,
    UNITS,
    LocalUnit,
    UnitFile,
    dropin,
    load_unit,
    read_env_file,
)
from tests.process_harness import BIN, wait_for

ALL_UNITS = (*SERVICES, COLLECTOR)
DROPINS = sorted(UNITS.glob("*.service.d/*.conf.example"))
PASSWORD = "systemd-boot-password"
ADMIN_TOKEN = "systemd-boot-admin-token-0123456789abcdef"
TARGET = "127.0.0.62"

# Every unit, whatever it runs (docs/deploy.md, "Hardening").
HARDENING = {
    "DynamicUser": "yes",
    "UMask": "0077",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateMounts": "yes",
    "NoNewPrivileges": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectProc": "invisible",
    "RemoveIPC": "yes",
    "SystemCallArchitectures": "native",
    "Restart": "on-failure",
    "Type": "exec",
}
# The secrets each unit must receive as credentials (and the drop-ins' additions).
CREDENTIALS = {
    "outpost-registry.service": {
        "database-url",
        "registry-secret.key",
        "admin.token",
        "access.key",
        "gateway.token",
        "scheduler.token",
    },
    "outpost-scheduler.service": {"database-url", "scheduler.token", "gateway.token"},
    "outpost-gateway.service": {"database-url", "gateway.token"},
    COLLECTOR: {"password", "access.key"},
}
SECRET_WORDS = re.compile(r"password|token|secret|key|database.url|credential", re.IGNORECASE)
MAX_EXPOSURE = 2.0
"""`systemd-analyze security` scale 0 (locked down) .. 10; below 2 it calls a unit "OK"."""


# --- systemd's own reading ---------------------------------------------------------------


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed: `make system-deps` installs the systemd package")
    return path


def installed_copy(tmp_path: Path) -> Path:
    """The units as installed in /etc/systemd/system, with the programs where this checkout has them."""
    directory = tmp_path / "system"
    directory.mkdir()
    for name in ALL_UNITS:
        (directory / name).write_text((UNITS / name).read_text().replace(INSTALL_BIN, f"{BIN}/"))
    (directory / COLLECTOR.replace("@.", "@lab.")).write_text((directory / COLLECTOR).read_text())
    for example in DROPINS:
        target = directory / example.parent.name / example.name.removesuffix(".example")
        target.parent.mkdir(exist_ok=True)
        target.write_text(example.read_text())
    return directory


def test_systemd_analyze_verify_accepts_every_unit_and_drop_in(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    directory = installed_copy(tmp_path)
    units = [str(directory / n) for n in (*SERVICES, COLLECTOR.replace("@.", "@lab."))]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60, check=False)
    # verify exits 0 on an unknown key or a bad value in a drop-in; any line it prints is a finding.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


def test_systemd_analyze_verify_catches_a_bad_setting(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key in a drop-in is reported."""
    analyze = systemd_analyze()
    directory = installed_copy(tmp_path)
    (directory / "outpost-gateway.service.d" / "typo.conf").write_text("[Service]\nProtectSytem=strict\n")
    result = subprocess.run(
        [analyze, "verify", str(directory / "outpost-gateway.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Unknown key 'ProtectSytem'" in result.stdout + result.stderr


@pytest.mark.parametrize("name", [*SERVICES, COLLECTOR.replace("@.", "@lab.")])
def test_systemd_analyze_security_rates_each_unit_ok(name: str, tmp_path: Path) -> None:
    analyze = systemd_analyze()
    directory = installed_copy(tmp_path)
    for example in directory.glob("*.d/*.conf"):  # the unit as shipped, without the opt-ins
        example.unlink()
    result = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", str(directory / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


# --- policy on the parsed units --------------------------------------------------------


@pytest.mark.parametrize("name", ALL_UNITS)
def test_every_unit_carries_the_hardening_set(name: str) -> None:
    unit = load_unit(name)
    for key, expected in HARDENING.items():
        assert unit.value(key) == expected, f"{name}: {key}={unit.value(key)!r}, want {expected!r}"
    assert unit.values("CapabilityBoundingSet") == [], f"{name}: CapabilityBoundingSet= must be empty"
    assert unit.values("AmbientCapabilities") == [], f"{name}: AmbientCapabilities= must be empty"
    assert "@system-service" in unit.words("SystemCallFilter"), name
    assert unit.value("StateDirectory"), f"{name}: no StateDirectory="
    assert unit.value("TimeoutStopSec"), f"{name}: no TimeoutStopSec="
    # MemoryDenyWriteExecute= would kill cffi's callbacks (see the units' comment).
    assert unit.value("MemoryDenyWriteExecute") is None


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", text)
    assert match, text
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def test_the_gateway_may_finish_its_drain_before_systemd_kills_it() -> None:
    unit = load_unit("outpost-gateway.service")
    drain = float(read_env_file((UNITS / "env" / "gateway.env").read_text())["OUTPOST_GATEWAY_DRAIN_SECONDS"])
    assert seconds(unit.value("TimeoutStopSec") or "") >= 2 * drain + 30


def all_variants() -> Iterator[tuple[str, UnitFile]]:
    """Every unit as shipped and with each of its drop-ins."""
    for name in ALL_UNITS:
        yield name, load_unit(name)
        for example in sorted((UNITS / f"{name}.d").glob("*.conf.example")):
            yield f"{name} + {example.name}", load_unit(name, [example])


@pytest.mark.parametrize(("label", "unit"), list(all_variants()), ids=lambda v: v if isinstance(v, str) else "")
def test_secrets_reach_the_process_only_as_credentials(label: str, unit: UnitFile) -> None:
    credentials = unit.credentials()
    for ident, source in credentials.items():
        assert source.startswith("/etc/outpost/credentials/"), f"{label}: credential {ident} from {source}"
    # Every %d/NAME used is a credential of the unit.
    texts = [*unit.values("ExecStart"), *unit.values("ExecStartPre"), *unit.values("Environment")]
    for text in texts:
        for ident in re.findall(r"%d/([\w.-]+)", text):
            assert ident in credentials, f"{label}: %d/{ident} is not loaded with LoadCredential="
    # A secret-looking flag or variable takes a file: %d/NAME, never a literal.
    for text in unit.values("ExecStart") + unit.values("ExecStartPre"):
        for flag, value in re.findall(r"(--[\w-]+)=(\S+)", text):
            if SECRET_WORDS.search(flag):
                assert value.startswith("%d/") or "=%d/" in value, f"{label}: {flag}={value} is not a credential"
    for assignment in unit.values("Environment"):
        key, _, value = assignment.partition("=")
        if SECRET_WORDS.search(key):
            assert value.startswith("%d/"), f"{label}: Environment={assignment} is not a credential's path"
        assert "://" not in value or "@" not in value, f"{label}: a URL with credentials in Environment="
    assert "SetCredential" not in {k for _, k in unit.entries}, f"{label}: a secret inlined in the unit"


@pytest.mark.parametrize("name", ALL_UNITS)
def test_each_unit_loads_the_secrets_its_service_needs(name: str) -> None:
    assert set(load_unit(name).credentials()) == CREDENTIALS[name]


@pytest.mark.parametrize("env_file", sorted((UNITS / "env").glob("*.env")), ids=lambda p: p.name)
def test_the_example_env_files_hold_no_secret(env_file: Path) -> None:
    for key, value in read_env_file(env_file.read_text()).items():
        assert not SECRET_WORDS.search(key) or key.endswith("_FILE"), f"{env_file.name}: {key}"
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"{env_file.name}: {key} carries a password"


def test_every_variable_the_units_set_is_one_the_program_reads() -> None:
    """`OUTPOST_<SERVICE>_<KEY>` in an env file or Environment= must be a flag of that program
    (the chart tests' rule): a setting nothing reads would be silently ignored."""
    helps: dict[str, str] = {}
    settings: list[tuple[str, str]] = []
    for env_file in (UNITS / "env").glob("*.env"):
        settings += [(env_file.name, key) for key in read_env_file(env_file.read_text())]
    for label, unit in all_variants():
        settings += [(label, a.partition("=")[0]) for a in unit.values("Environment")]
    for where, key in settings:
        if not key.startswith("OUTPOST_"):
            assert key in {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"}, f"{where}: {key} is not an Outpost setting"
            continue
        match = re.fullmatch(r"OUTPOST_(REGISTRY|SCHEDULER|GATEWAY|COLLECTOR)_(\w+)", key)
        assert match, f"{where}: {key}"
        program = f"outpost-{match.group(1).lower()}"
        if program not in helps:
            helps[program] = subprocess.run(
                [str(BIN / program), "--help"], capture_output=True, text=True, check=True
            ).stdout
        flag = "--" + match.group(2).lower().replace("_", "-")
        read = re.search(rf"{flag}\b", helps[program]) or key in helps[program]
        assert read, f"{where}: {program} does not read {key}"


def test_cap_net_raw_comes_only_with_the_icmp_drop_in() -> None:
    for name in ALL_UNITS:
        text = (UNITS / name).read_text()
        assert "CAP_NET_RAW" not in re.sub(r"#.*", "", text), name
    for example in DROPINS:
        unit = load_unit(example.parent.name.removesuffix(".d"), [example])
        caps = set(unit.words("CapabilityBoundingSet")) | set(unit.words("AmbientCapabilities"))
        assert caps == ({"CAP_NET_RAW"} if example.name == "icmp.conf.example" else set()), example.name
        assert "AF_PACKET" not in unit.words("RestrictAddressFamilies"), example.name
    icmp_unit = load_unit(COLLECTOR, [dropin(COLLECTOR, "icmp.conf.example")])
    assert icmp_unit.values("CapabilityBoundingSet") == ["CAP_NET_RAW"]
    assert icmp_unit.values("AmbientCapabilities") == ["CAP_NET_RAW"]


# --- the units boot ------------------------------------------------------------------------


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database("outpost_systemd") as url:
        yield url


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((TARGET, 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def install(root: Path, database_url: str) -> AccessKey:
    """What docs/deploy.md tells the operator to put in /etc/outpost (files root-only, 0600)."""
    etc = root / "etc" / "outpost"
    credentials = etc / "credentials"
    access_key = AccessKey(new_key_id(), new_secret())
    files: dict[str, str | bytes] = {
        "registry/database-url": database_url,
        "scheduler/database-url": database_url,
        "gateway/database-url": database_url,
        "registry/registry-secret.key": os.urandom(32),
        "registry/admin.token": ADMIN_TOKEN,
        "registry/access.key": access_key.encode(),
        "gateway.token": secrets.token_hex(32),
        "scheduler.token": secrets.token_hex(32),
        "collector-lab/password": PASSWORD,
        "collector-lab/access.key": access_key.encode(),
    }
    for relative, content in files.items():
        path = credentials / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(content if isinstance(content, bytes) else f"{content}\n".encode())
        path.chmod(0o600)
    for example in (UNITS / "env").glob("*.env"):
        shutil.copyfile(example, etc / example.name)
    return access_key


def outpostctl(network: Network, *args: str, stdin: str | None = None) -> str:
    return pods.outpostctl(network, ADMIN_TOKEN, *args, stdin=stdin)


def health_serving(network: Network, port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(network.address(port)) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def icmp_drop_in_possible() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


@pytest.mark.postgres
@pytest.mark.parametrize(
    "icmp_drop_in",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(
                not icmp_drop_in_possible(), reason="granting CAP_NET_RAW to a process takes root and setpriv(1)"
            ),
        ),
    ],
    ids=["as-shipped", "with-icmp-drop-in"],
)
def test_the_units_boot_register_a_collector_and_run_a_discovery(
    icmp_drop_in: bool, database: str, listener: int, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    install(root, database)
    network = Network(workdir=tmp_path)
    units = [LocalUnit(load_unit(name), root, network) for name in SERVICES]
    collector_dropins = [dropin(COLLECTOR, "icmp.conf.example")] if icmp_drop_in else []
    collector = LocalUnit(load_unit(COLLECTOR, collector_dropins), root, network, instance="lab")
    started: list[LocalUnit] = []
    try:
        for unit, port in zip(units, (50051, 50071, 50061), strict=True):
            unit.prepare().run_pre()
            started.append(unit.start())
            wait_for(
                lambda u=unit, p=port: u.alive() and health_serving(network, p),  # type: ignore[misc]
                timeout=60,
                interval=0.1,
                what=f"{unit.unit_name} serving (or it exited)",
            )
        # The registry took the bootstrap access key from its credential, not from a file it wrote.
        assert not (root / "var" / "lib" / "outpost-registry" / "access.key").exists()

        started.append(collector.prepare().start())
        assert collector.runtime_directory is not None
        status_file = collector.runtime_directory / "status.json"

        def collector_state(state: str) -> bool:
            assert collector.alive(), collector.log()
            return status_file.exists() and json.loads(status_file.read_text()).get("state") == state

        wait_for(lambda: collector_state("pending"), timeout=30, what="outpost-collector@lab pending")
        assert oct(status_file.stat().st_mode & 0o777) == "0o600"  # UMask=0077
        outpostctl(
            network,
            "collectors",
            "register",
            "edge-lab-1",
            "--username",
            "svc",
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
        )
        wait_for(lambda: collector_state("enabled"), timeout=30, what="outpost-collector@lab enabled")

        outpostctl(
            network,
            "discoveries",
            "create",
            "systemd",
            "--targets",
            TARGET,
            "--ports",
            str(listener),
            "--collector",
            "edge-lab-1",
            "--probes",
            "icmp,tcp",
        )
        summary = json.loads(outpostctl(network, "discoveries", "run", "systemd", "--wait", "--json"))
        assert summary["state"] == "succeeded", summary
        devices = json.loads(outpostctl(network, "devices", "list", "--json"))
        assert [(d["ip"], d["open_ports"], d["zone"]) for d in devices] == [(TARGET, [listener], "lab")]

        # ICMP as the unit's capabilities allow: CAP_NET_RAW with the drop-in, else ping sockets
        # where ping_group_range admits the group, else none (liveness from TCP).
        events = [json.loads(line) for line in collector.log().splitlines() if line.startswith("{")]
        chosen = {e.get("access") for e in events if e.get("event") == "icmp_access_chosen"}
        refused = [e for e in events if e.get("event") == "icmp_not_permitted"]
        if icmp_drop_in:
            assert chosen == {"privileged"}, events
        elif icmp.unprivileged_access(icmp.current_groups(), icmp.read_ping_group_range()).value == "unprivileged":
            assert chosen == {"unprivileged"}, events
        elif icmp_drop_in_possible():  # the capabilities were really dropped
            assert refused and not chosen, events
    except BaseException:
        for unit in started:
            print(f"==== {unit.unit_name}\n{unit.log()[-4000:]}")
        raise
    finally:
        for unit in reversed(started):
            unit.stop()
