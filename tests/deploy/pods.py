"""Running a rendered pod spec as local processes, the way a kubelet would start it.

The rendered objects are the only source: each container's `command` + `args` and `env`
(values, `secretKeyRef`s against the Secrets the chart rendered or the test stands in for
the operator's, `fieldRef: metadata.name`, and `$(VAR)` references expanded as Kubernetes
does). Volumes become directories under the test's tmp dir: a Secret or projected volume
holds its items' files, an emptyDir or a volumeClaimTemplate is an empty directory; every
mount path in an argument or a value is remapped to its directory. Listen addresses
(`0.0.0.0:PORT`) and Service addresses (`NAME:PORT`) become loopback with a free port per
chart port. Nothing else reaches the process: its environment is only what the chart
sets, plus PATH, HOME and the test run's PYTHONPATH.

Readiness is the rendered readinessProbe itself (gRPC health Check, an exec command, an
HTTP GET), run against the remapped ports and paths.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import free_port
from tests.process_harness import BIN, Process, wait_for

Secrets = dict[str, dict[str, bytes]]
"""Secret name -> key -> bytes."""


def rendered_secrets(objects: list[dict[str, Any]]) -> Secrets:
    return {
        o["metadata"]["name"]: {k: base64.b64decode(v) for k, v in o.get("data", {}).items()}
        for o in objects
        if o["kind"] == "Secret"
    }


@dataclass
class Network:
    """Chart ports -> loopback ports, and Service names -> loopback."""

    workdir: Path
    ports: dict[int, int] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)

    def port(self, chart_port: int) -> int:
        if chart_port not in self.ports:
            self.ports[chart_port] = free_port()
        return self.ports[chart_port]

    def address(self, chart_port: int) -> str:
        return f"127.0.0.1:{self.port(chart_port)}"

    def learn(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            if obj["kind"] == "Service":
                self.services.add(obj["metadata"]["name"])

    def remap(self, text: str) -> str:
        text = re.sub(r"0\.0\.0\.0:(\d+)", lambda m: self.address(int(m.group(1))), text)
        for name in sorted(self.services, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(name)}:(\d+)", lambda m: self.address(int(m.group(1))), text)
        return text


@dataclass
class Pod:
    """One pod of a rendered workload: its volumes as directories, its containers as processes."""

    name: str
    spec: dict[str, Any]
    root: Path
    secrets: Secrets
    network: Network
    claims: list[str] = field(default_factory=list)
    mounts: dict[str, Path] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        directories = {}
        for name in [*volumes, *self.claims]:
            directory = self.root / "volumes" / name
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            directories[name] = directory
            volume = volumes.get(name, {})
            if "secret" in volume:
                self._write_secret(directory, volume["secret"]["secretName"], volume["secret"].get("items"))
            for source in volume.get("projected", {}).get("sources", []):
                self._write_secret(directory, source["secret"]["name"], source["secret"].get("items"))
        for container in self.spec.get("initContainers", []) + self.spec["containers"]:
            for mount in container.get("volumeMounts", []):
                self.mounts[mount["mountPath"]] = directories[mount["name"]]

    def _write_secret(self, directory: Path, name: str, items: list[dict[str, str]] | None) -> None:
        data = self.secrets[name]
        for item in items or [{"key": k, "path": k} for k in data]:
            path = directory / item["path"]
            path.write_bytes(data[item["key"]])
            path.chmod(0o440)  # as a Secret volume with the chart's defaultMode and fsGroup

    def remap(self, text: str) -> str:
        """Mount paths -> their directories (one pass: a directory may itself be under /tmp), then addresses."""
        if self.mounts:
            paths = "|".join(re.escape(p) for p in sorted(self.mounts, key=len, reverse=True))
            text = re.sub(rf"(?<![\w/.])({paths})(?=/|$|[^\w.-])", lambda m: str(self.mounts[m.group(1)]), text)
        return self.network.remap(text)

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in container.get("env", []):
            if "value" in var:
                value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
            elif "secretKeyRef" in var["valueFrom"]:
                ref = var["valueFrom"]["secretKeyRef"]
                value = self.secrets[ref["name"]][ref["key"]].decode()
            elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
                value = self.name
            else:
                raise AssertionError(f"unsupported env source in the chart: {var}")
            env[var["name"]] = self.remap(value)
        return env

    def argv(self, container: dict[str, Any]) -> list[str]:
        command = [*container.get("command", []), *container.get("args", [])]
        executable = BIN / command[0]
        program = str(executable) if executable.exists() else shutil.which(command[0])
        assert program, f"{command[0]} is neither an Outpost console script nor on PATH"
        return [program, *(self.remap(arg) for arg in command[1:])]

    def process_env(self, container: dict[str, Any]) -> dict[str, str]:
        # PYTHONPATH, when the test run has one, so a checkout that is not the installed
        # one (a worktree) boots its own code, not the installed package's.
        inherited = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
        return {**inherited, "HOME": str(self.root), **self.environment(container)}

    def run_to_completion(self, container: dict[str, Any], timeout: float = 120) -> None:
        result = subprocess.run(
            self.argv(container),
            env=self.process_env(container),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{self.name}/{container['name']} exited {result.returncode}: {result.stderr}"

    def start(self) -> Pod:
        """Init containers in turn, to completion; then the containers as processes."""
        for container in self.spec.get("initContainers", []):
            self.run_to_completion(container)
        for container in self.spec["containers"]:
            process = Process(
                f"{self.name}/{container['name']}",
                self.argv(container),
                self.root / f"{container['name']}.log",
                env=self.process_env(container),
            )
            process.popen = subprocess.Popen(
                process.args,
                stdout=process.log_path.open("ab"),
                stderr=subprocess.STDOUT,
                env=process.env,
            )
            self.processes.append(process)
        return self

    def probe(self, kind: str = "readinessProbe") -> bool:
        for container, process in zip(self.spec["containers"], self.processes, strict=True):
            if not process.alive():
                raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.log()}")  # type: ignore[union-attr]
            if not self._probe_once(container[kind]):
                return False
        return True

    def _probe_once(self, probe: dict[str, Any]) -> bool:
        if "grpc" in probe:
            address = self.network.address(probe["grpc"]["port"])
            with grpc.insecure_channel(address) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")), timeout=1
                    )
                except grpc.RpcError:
                    return False
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
        if "exec" in probe:
            command = [self.remap(part) for part in probe["exec"]["command"]]
            return subprocess.run(command, check=False, capture_output=True).returncode == 0
        if "httpGet" in probe:
            raise AssertionError("httpGet probes are exercised with TLS, which this test does not render")
        raise AssertionError(f"unsupported probe {probe}")

    def wait_ready(self, timeout: float = 60) -> Pod:
        wait_for(self.probe, timeout=timeout, interval=0.1, what=f"{self.name} ready (its readinessProbe)")
        assert self.probe("livenessProbe"), f"{self.name} is ready but its livenessProbe fails"
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.alive():
                process.stop()

    def log(self) -> str:
        return "\n".join(p.log() for p in self.processes)


def outpostctl(network: Network, admin_token: str, *args: str, stdin: str | None = None) -> str:
    """outpostctl against the booted services (their loopback addresses), as the admin; its stdout."""
    result = subprocess.run(
        [
            str(BIN / "outpostctl"),
            "--registry",
            network.address(50051),
            "--scheduler",
            network.address(50071),
            "--gateway",
            network.address(50062),
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OUTPOST_TOKEN": admin_token, "OUTPOST_CONFIG": str(network.workdir / "outpostctl.json")},
    )
    assert result.returncode == 0, f"outpostctl {' '.join(args)}: {result.stderr}{result.stdout}"
    return result.stdout
