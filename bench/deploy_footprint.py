"""Deployment figures: chart render time, installed size per image extra, collector RSS.

    .venv/bin/python bench/deploy_footprint.py [--renders 10] [--json bench/results/deploy_footprint.json]

Theory of operation
-------------------
- Render time: `helm template` (the project's `.tools/bin/helm`, `make tools`) of each
  chart with its example values files, `--renders` times each; median and max wall time
  of the whole command, as `make test` and an operator's `helm install --dry-run` pay it.
- Installed size: what each image's `pip install` puts in site-packages, summed from the
  distributions' RECORD files in this venv (tests/deploy/extras.py resolves the closure
  of `outpost[collector]` and `outpost[server,cli]`: the same pinned versions the images
  install). No image builder runs here, so image sizes are not measured; the figure is
  the Python payload an image adds to its base.
- Collector RSS: a child interpreter in a venv holding only the collector extra imports
  every module of the collector and reports its peak RSS (ru_maxrss); the same in this
  full venv as the baseline. It is the cost of the code loaded, not of a running scan
  (bench/collector_scan_rss.py measures that).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.deploy.extras import closure, install_into, installed_bytes  # noqa: E402

HELM = ROOT / ".tools" / "bin" / "helm"
CHARTS = ROOT / "deploy" / "k8s" / "charts"
EXAMPLES = ROOT / "deploy" / "k8s" / "examples"
RENDERS = {
    "outpost (lab-single.yaml)": [str(CHARTS / "outpost"), "-f", str(EXAMPLES / "lab-single.yaml")],
    "outpost (ha-tls.yaml)": [str(CHARTS / "outpost"), "-f", str(EXAMPLES / "ha-tls.yaml")],
    "outpost-collector (zone-icmp.yaml)": [str(CHARTS / "outpost-collector"), "-f", str(EXAMPLES / "zone-icmp.yaml")],
}
RSS_CHILD = """
import importlib, pkgutil, resource, sys
import services.collector as collector
for module in pkgutil.walk_packages(collector.__path__, "services.collector."):
    importlib.import_module(module.name)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def render_seconds(renders: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, args in RENDERS.items():
        times = []
        for _ in range(renders):
            started = time.perf_counter()
            subprocess.run([str(HELM), "template", "rel", *args], check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        out[name] = {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}
    return out


def collector_rss_kib(python: str) -> int:
    result = subprocess.run(
        [python, "-c", RSS_CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{ROOT / 'libs'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    return int(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "deploy_footprint.json")
    opts = parser.parse_args()
    if not HELM.exists():
        raise SystemExit(f"{HELM} is missing: run make tools")

    renders = render_seconds(opts.renders)
    extras = {
        "collector image (.[collector])": closure("collector"),
        "control plane image (.[server,cli])": closure("server", "cli"),
        "development (.[dev])": closure("dev"),
    }
    sizes = {name: {"distributions": len(d), "mib": installed_bytes(d) / 2**20} for name, d in extras.items()}
    with tempfile.TemporaryDirectory() as scratch:
        slim = install_into(Path(scratch) / "venv", closure("collector"))
        rss = {
            "collector-only venv": collector_rss_kib(str(slim)),
            "full development venv": collector_rss_kib(sys.executable),
        }

    print(f"{'helm template':<40} {'median ms':>10} {'max ms':>8}")
    for name, figures in renders.items():
        print(f"{name:<40} {figures['median_ms']:>10.0f} {figures['max_ms']:>8.0f}")
    print(f"\n{'installed (site-packages)':<40} {'dists':>10} {'MiB':>8}")
    for name, figures in sizes.items():
        print(f"{name:<40} {figures['distributions']:>10} {figures['mib']:>8.1f}")
    print(f"\n{'collector modules imported, peak RSS':<40} {'MiB':>10}")
    for name, kib in rss.items():
        print(f"{name:<40} {kib / 1024:>10.1f}")

    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(
        json.dumps(
            {
                "helm_template": renders,
                "installed": sizes,
                "collector_import_rss_kib": rss,
                "python": sys.version.split()[0],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {opts.json.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
