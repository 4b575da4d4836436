"""The one version string every Outpost process reports."""

from __future__ import annotations

import os
import sys

# Read from the installed distribution's metadata file, the way importlib.metadata finds
# it (the first `outpost-*.dist-info` on sys.path), without importing importlib.metadata:
# it pulls in email, zipfile and csv, ~2.5 MiB of every collector's memory
# (bench/collector_scan_rss.py).
SOURCE_VERSION = "0.0.0+source"  # running from a source tree without installing


def installed_version(name: str, path: list[str] | None = None) -> str | None:
    """The `Version:` of distribution `name` first found on `path` (default sys.path), or None."""
    for entry in sys.path if path is None else path:
        try:
            children = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for child in children:
            stem, _, suffix = child.rpartition(".")
            if suffix != "dist-info" or stem.rpartition("-")[0].replace("-", "_").lower() != name.lower():
                continue
            try:
                with open(os.path.join(entry or ".", child, "METADATA"), encoding="utf-8") as metadata:
                    for line in metadata:
                        if not line.strip():
                            break  # the headers end at the first blank line
                        key, _, value = line.partition(":")
                        if key.strip().lower() == "version":
                            return value.strip()
            except OSError:
                continue
    return None


VERSION = installed_version("outpost") or SOURCE_VERSION

PROTOCOL_VERSION = 1
"""Major version of the agent protocol (`Hello.protocol_version`)."""
