"""The systemd units of deploy/systemd/, parsed, and started as local processes the way systemd would.

Parsing follows systemd.syntax(7) for what the units use: `[Section]`, `Key=Value`, `#`/`;`
comments, a trailing backslash continuing a line; drop-ins are read after the unit, and an
empty assignment (`LoadCredential=`, `CapabilityBoundingSet=`) resets what came before, as
systemd does for list settings.

`LocalUnit` runs one unit (an instance, for a template) under a directory that stands in for
`/`: `/etc/outpost/...` (env files, credential sources) and the paths systemd makes
(`/run/credentials/<unit>` for `%d`, `StateDirectory=` under `var/lib`, `RuntimeDirectory=`
under `run`) live there. What the process gets is what systemd would give it: the
`EnvironmentFile=` and `Environment=` variables, `$CREDENTIALS_DIRECTORY`,
`$STATE_DIRECTORY`, `$RUNTIME_DIRECTORY`, the specifiers `%i %d %S %t %n %%` resolved, the
credentials copied (mode 0400) into the credentials directory, `UMask=` applied, and its
capabilities as `CapabilityBoundingSet=`/`AmbientCapabilities=`/`NoNewPrivileges=` say
(through setpriv(1), when the test runs as root). The processes run as the test's user,
not a DynamicUser=, and without the namespaces and the seccomp filter: those only systemd
can set up, and `systemd-analyze verify`/`security` check them instead.

Addresses in the env files (`HOST:PORT`) become loopback with a free port per port number
(the chart tests' `Network` keeps the map), so a collector's `tcp://gw.example:6600` reaches the
gateway's `0.0.0.0:6600`. `/opt/outpost/bin/<program>` is this checkout's console script.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.charts import ROOT
from tests.deploy.pods import Network
from tests.process_harness import BIN, Process

UNITS = ROOT / "deploy" / "systemd"
INSTALL_BIN = "/opt/outpost/bin/"
SERVICES = ("outpost-registry.service", "outpost-scheduler.service", "outpost-gateway.service")
COLLECTOR = "outpost-collector@.service"
HOST_PORT = re.compile(r"(?<![\w.-])[A-Za-z0-9][A-Za-z0-9.-]*:(\d{1,5})(?![\w.])")
"""`host:port` in an env file's value: every one becomes loopback (one pass, so a result is never remapped)."""
HOST_PATHS = re.compile(r"(?<![\w/.~-])(/etc/outpost/|/var/lib/|/run/)")
"""Absolute paths that live under the test's stand-in for `/`."""


@dataclass
class UnitFile:
    """One unit with its drop-ins: (section, key) -> the values in order, after empty-assignment resets."""

    name: str
    entries: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def values(self, key: str, section: str = "Service") -> list[str]:
        return list(self.entries.get((section, key), []))

    def value(self, key: str, section: str = "Service") -> str | None:
        values = self.values(key, section)
        return values[-1] if values else None

    def words(self, key: str, section: str = "Service") -> list[str]:
        return [word for value in self.values(key, section) for word in value.split()]

    def credentials(self) -> dict[str, str]:
        """LoadCredential=/LoadCredentialEncrypted= id -> source path."""
        found = {}
        for key in ("LoadCredential", "LoadCredentialEncrypted"):
            for value in self.values(key):
                ident, _, path = value.partition(":")
                found[ident] = path
        return found


def parse_into(unit: UnitFile, text: str, source: str) -> None:
    section = ""
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line[0] in "#;"):
            continue
        if logical and line[:1] in ("#", ";"):
            continue  # a comment inside a continued line is skipped, as systemd does
        if line.endswith("\\"):
            logical.append(line[:-1].strip())
            continue
        logical.append(line)
        whole = " ".join(part for part in logical if part)
        logical = []
        if whole.startswith("[") and whole.endswith("]"):
            section = whole[1:-1]
            continue
        key, sep, value = whole.partition("=")
        assert sep, f"{source}: not a Key=Value line: {whole!r}"
        key, value = key.strip(), value.strip()
        if value == "":
            unit.entries[(section, key)] = []
        else:
            unit.entries.setdefault((section, key), []).append(value)
    assert not logical, f"{source}: ends inside a continued line"


def load_unit(name: str, dropins: Sequence[Path] = ()) -> UnitFile:
    unit = UnitFile(name)
    parse_into(unit, (UNITS / name).read_text(), name)
    for dropin in dropins:
        parse_into(unit, dropin.read_text(), str(dropin.relative_to(UNITS)))
    return unit


def dropin(unit: str, name: str) -> Path:
    return UNITS / f"{unit}.d" / name


def read_env_file(text: str) -> dict[str, str]:
    """EnvironmentFile= syntax: KEY=VALUE lines, comments, optional quotes around the value."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


@dataclass
class LocalUnit:
    """One unit started as local processes, with exactly the unit's configuration (module docstring)."""

    unit: UnitFile
    root: Path
    network: Network
    instance: str = ""
    processes: list[Process] = field(default_factory=list)

    @property
    def unit_name(self) -> str:
        return self.unit.name.replace("@.", f"@{self.instance}.") if self.instance else self.unit.name

    @property
    def credentials_directory(self) -> Path:
        return self.root / "run" / "credentials" / self.unit_name

    def _directory(self, key: str, base: Path) -> Path | None:
        value = self.unit.value(key)
        return base / self.specifiers(value) if value else None

    @property
    def state_directory(self) -> Path | None:
        return self._directory("StateDirectory", self.root / "var" / "lib")

    @property
    def runtime_directory(self) -> Path | None:
        return self._directory("RuntimeDirectory", self.root / "run")

    def specifiers(self, text: str) -> str:
        table = {
            "i": self.instance,
            "I": self.instance,
            "d": str(self.credentials_directory),
            "S": str(self.root / "var" / "lib"),
            "t": str(self.root / "run"),
            "n": self.unit_name,
            "%": "%",
        }

        def one(match: re.Match[str]) -> str:
            letter = match.group(1)
            assert letter in table, f"{self.unit.name}: specifier %{letter} is not handled by this test"
            return table[letter]

        return re.sub(r"%(.)", one, text)

    def loopback(self, text: str) -> str:
        return HOST_PORT.sub(lambda m: self.network.address(int(m.group(1))), text)

    def host_path(self, text: str) -> str:
        return HOST_PATHS.sub(lambda m: str(self.root) + m.group(1), text)

    def prepare(self) -> LocalUnit:
        """What systemd does before ExecStartPre=: directories and the credentials directory."""
        for directory in (self.state_directory, self.runtime_directory):
            if directory is not None:
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(0o700)
        self.credentials_directory.mkdir(parents=True, exist_ok=True)
        for ident, source in self.unit.credentials().items():
            path = Path(self.specifiers(self.host_path(source)))
            assert path.is_file(), f"{self.unit_name}: credential {ident} from {source}: no such file (the unit fails)"
            target = self.credentials_directory / ident
            shutil.copyfile(path, target)
            target.chmod(0o400)
        self.credentials_directory.chmod(0o500)
        return self

    def environment(self) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.root), "LANG": "C.UTF-8"}
        # The stand-in for /opt/outpost: this checkout's code (the editable install may be another).
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for file in self.unit.values("EnvironmentFile"):
            optional = file.startswith("-")
            path = Path(self.specifiers(self.host_path(file.lstrip("-"))))
            if optional and not path.exists():
                continue
            env |= {k: self.loopback(v) for k, v in read_env_file(path.read_text()).items()}
        for assignment in self.unit.values("Environment"):
            for word in shlex.split(assignment):
                key, _, value = word.partition("=")
                env[key] = self.specifiers(self.host_path(value))
        env["CREDENTIALS_DIRECTORY"] = str(self.credentials_directory)
        if self.state_directory is not None:
            env["STATE_DIRECTORY"] = str(self.state_directory)
        if self.runtime_directory is not None:
            env["RUNTIME_DIRECTORY"] = str(self.runtime_directory)
        return env

    def command(self, line: str, env: dict[str, str]) -> list[str]:
        """An Exec*= line as systemd runs it: specifiers, then ${VAR} from the unit's environment."""
        assert line[:1] not in "-+!@:|", f"{self.unit.name}: command prefixes are not handled: {line}"
        words = shlex.split(self.specifiers(self.host_path(line)))

        def variable(match: re.Match[str]) -> str:
            assert match.group(1) in env, f"{self.unit.name}: ${{{match.group(1)}}} is not set for {line}"
            return env[match.group(1)]

        argv = []
        for word in words:
            assert not re.search(r"\$[A-Za-z_]", word), f"{self.unit.name}: bare $VAR (word splitting): {word}"
            argv.append(re.sub(r"\$\{(\w+)\}", variable, word))
        assert argv[0].startswith(INSTALL_BIN), f"{self.unit.name}: runs {argv[0]}, not an installed Outpost program"
        program = BIN / argv[0].removeprefix(INSTALL_BIN)
        assert program.exists(), f"{self.unit.name}: {argv[0]} is not an Outpost console script"
        return [*self.privileges(), str(program), *argv[1:]]

    def privileges(self) -> list[str]:
        """setpriv(1) applying CapabilityBoundingSet=, AmbientCapabilities= and NoNewPrivileges=."""
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            return []  # not root: the process has no capabilities to drop
        bounding = [c.lower().removeprefix("cap_") for c in self.unit.words("CapabilityBoundingSet")]
        ambient = [c.lower().removeprefix("cap_") for c in self.unit.words("AmbientCapabilities")]
        caps = ",".join(["-all", *(f"+{c}" for c in bounding)])
        wrapper = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
        if ambient:
            wrapper.append("--ambient-caps=" + ",".join(f"+{c}" for c in ambient))
        if self.unit.value("NoNewPrivileges") == "yes":
            wrapper.append("--no-new-privs")
        return [*wrapper, "--"]

    def umask(self) -> int:
        return int(self.unit.value("UMask") or "0022", 8)

    def run_pre(self, timeout: float = 120) -> None:
        env = self.environment()
        for line in self.unit.values("ExecStartPre"):
            result = subprocess.run(
                self.command(line, env),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                umask=self.umask(),
            )
            failed = f"{self.unit_name}: ExecStartPre={line} exited {result.returncode}"
            assert result.returncode == 0, f"{failed}: {result.stderr}"

    def start(self) -> LocalUnit:
        env = self.environment()
        (line,) = self.unit.values("ExecStart")
        process = Process(self.unit_name, self.command(line, env), self.root / f"{self.unit_name}.log", env=env)
        with process.log_path.open("ab") as log:
            process.popen = subprocess.Popen(
                process.args, stdout=log, stderr=subprocess.STDOUT, env=env, umask=self.umask()
            )
        self.processes.append(process)
        return self

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.alive():
                process.stop(timeout=60)

    def log(self) -> str:
        return "\n".join(p.log() for p in self.processes)
