"""The version string read from the installed distribution's metadata, as importlib.metadata reads it."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from outpost.version import VERSION, installed_version


def _dist_info(site: Path, directory: str, version: str) -> None:
    (site / directory).mkdir(parents=True)
    (site / directory / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: outpost\nVersion: {version}\n\nVersion: not-a-header\n"
    )


def test_the_first_distribution_on_the_path_wins_and_others_are_ignored(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist_info(first, "outpost_extras-9.9.dist-info", "9.9")
    _dist_info(first, "outpost-1.2.3.dist-info", "1.2.3")
    _dist_info(second, "outpost-4.5.6.dist-info", "4.5.6")

    assert installed_version("outpost", [str(tmp_path / "missing"), str(first), str(second)]) == "1.2.3"
    assert installed_version("outpost", [str(second)]) == "4.5.6"
    assert installed_version("outpost", [str(tmp_path / "missing")]) is None


def test_it_agrees_with_importlib_metadata_here() -> None:
    try:
        expected = importlib.metadata.version("outpost")
    except importlib.metadata.PackageNotFoundError:
        expected = "0.0.0+source"
    assert expected == VERSION
