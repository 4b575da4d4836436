"""Rendering the Helm charts for tests: helm from `make tools`, objects as dicts.

`make test` passes OUTPOST_HELM (the project-local helm); run alone, the tests look in
`.tools/bin/helm` and fail with the command that installs it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "deploy" / "k8s" / "charts"
CONTROL_PLANE = CHARTS / "outpost"
COLLECTOR = CHARTS / "outpost-collector"
EXAMPLES = ROOT / "deploy" / "k8s" / "examples"
KUBERNETES_VERSION = "1.35.0"
"""The Kubernetes release the rendered objects are validated against (kubernetes-validate's schemas)."""

# The least a control plane release needs: the operator's two Secrets.
CONTROL_PLANE_REQUIRED = ["database.existingSecret=outpost-db", "secretKey.existingSecret=outpost-secret-key"]
COLLECTOR_REQUIRED = [
    "zone=lab",
    "servers[0]=tcp://gw.example:6600",
    "credentials.existingSecret=edge-lab",
    "accessKey.existingSecret=outpost-access-key",
]


def helm() -> Path:
    path = Path(os.environ.get("OUTPOST_HELM") or ROOT / ".tools" / "bin" / "helm")
    if not path.exists():
        pytest.fail(f"helm not found at {path}: run `make tools` (installs it into .tools/bin)")
    return path


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm()), *args], capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def render(
    chart: Path, release: str, values_files: Sequence[Path] = (), set_values: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """`helm template` (hooks included), parsed: one dict per object."""
    args = ["template", release, str(chart), "--namespace", "outpost"]
    for file in values_files:
        args += ["-f", str(file)]
    for value in set_values:
        args += ["--set", value]
    text = run_helm(*args).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) of every Deployment, StatefulSet and Job."""
    return [(o, o["spec"]["template"]["spec"]) for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]
