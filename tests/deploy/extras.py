"""What one extra of the `outpost` package installs, built offline from this venv.

`closure("collector")` walks `importlib.metadata` from the package's own requirements (the
base plus the extra's, markers evaluated) to every distribution they need. `install_into`
copies exactly those distributions' files from this venv into a fresh venv, so a test or
a benchmark gets what `pip install '.[collector]'` would install (the same pinned
versions) in about a second and without a package index. The `outpost` code itself comes
from the source tree on PYTHONPATH, as the editable install has it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PACKAGE = "outpost"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[Requirement]:
    found = []
    for text in dist.requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
            found.append(requirement)
    return found


def closure(*extras: str) -> dict[str, metadata.Distribution]:
    """Every distribution `outpost[extras]` installs (outpost itself excluded), by normalised name."""
    seen: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, set[str]]] = []
    for requirement in _requirements(metadata.distribution(PACKAGE), set(extras)):
        pending.append((requirement.name, set(requirement.extras)))
    while pending:
        name, wanted = pending.pop()
        if _normal(name) == PACKAGE:
            for requirement in _requirements(metadata.distribution(PACKAGE), wanted):
                pending.append((requirement.name, set(requirement.extras)))
            continue
        if _normal(name) in seen and not wanted:
            continue
        dist = metadata.distribution(name)
        seen[_normal(name)] = dist
        for requirement in _requirements(dist, wanted):
            if _normal(requirement.name) not in seen or requirement.extras:
                pending.append((requirement.name, set(requirement.extras)))
    return seen


def installed_bytes(dists: dict[str, metadata.Distribution]) -> int:
    total = 0
    for dist in dists.values():
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    return total


def install_into(venv: Path, dists: dict[str, metadata.Distribution]) -> Path:
    """A venv at `venv` holding only `dists` (copied from this venv); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in dists.values():
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if not source.is_file() or here not in source.parents:
                continue  # console scripts and the like live outside site-packages
            destination = target / source.relative_to(here)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return python
