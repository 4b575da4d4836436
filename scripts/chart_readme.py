"""Write each Helm chart's values table into its README, from the chart's values.yaml.

A `# -- text` comment right above a key documents it (the helm-docs convention); the row
shows the key's dotted path, its type and its default as values.yaml has it. The table
goes between the README's `<!-- values:start -->` and `<!-- values:end -->` markers.
`--check` changes nothing and exits 1 naming each README that is stale (the chart tests
run it, so a values.yaml edit without `make charts-readme` fails `make test`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHARTS = ROOT / "deploy" / "k8s" / "charts"
START = "<!-- values:start -->"
END = "<!-- values:end -->"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")
DOC_LINE = re.compile(r"^ *# -- ?(?P<text>.*)$")


@dataclass(frozen=True)
class Row:
    path: str
    kind: str
    default: str
    description: str


def documented_keys(values_text: str) -> list[tuple[str, str]]:
    """(dotted path, description) of every key with a `# --` comment, in file order."""
    found: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: str | None = None
    for line in values_text.splitlines():
        doc = DOC_LINE.match(line)
        if doc:
            pending = doc.group("text").strip()
            continue
        match = KEY_LINE.match(line)
        if not match:
            if not line.strip().startswith("#"):
                pending = None if line.strip() else pending
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group("key")))
        if pending is not None:
            found.append((".".join(key for _, key in stack), pending))
            pending = None
    return found


def _lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def rows(values_file: Path) -> list[Row]:
    text = values_file.read_text()
    values = yaml.safe_load(text)
    out = []
    for path, description in documented_keys(text):
        value = _lookup(values, path)
        default = json.dumps(value, separators=(", ", ": "))
        out.append(Row(path, _kind(value), default, description))
    return out


def table(values_file: Path) -> str:
    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for row in rows(values_file):
        cells = [f"`{row.path}`", row.kind, f"`{row.default}`", row.description]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def rendered_readme(chart: Path) -> tuple[str, str]:
    """(current README text, README text with a fresh table)."""
    readme = chart / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return text, f"{head}{START}\n{table(chart / 'values.yaml')}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a README's table is stale; change nothing")
    opts = parser.parse_args(argv)
    stale = []
    for chart in sorted(p.parent for p in CHARTS.glob("*/Chart.yaml")):
        current, fresh = rendered_readme(chart)
        if current == fresh:
            continue
        if opts.check:
            stale.append(chart / "README.md")
        else:
            (chart / "README.md").write_text(fresh)
            print(f"wrote {(chart / 'README.md').relative_to(ROOT)}")
    for readme in stale:
        print(f"{readme.relative_to(ROOT)} is stale: run make charts-readme", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
