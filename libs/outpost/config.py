"""Reading settings from flags and `OUTPOST_<SERVICE>_<KEY>` environment variables.

Only `app.py` modules call these. A flag wins over the environment, the environment over
the default; a bad value ends the process at start with one clear line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any


def env_default(service: str, key: str, default: Any = None) -> Any:
    return os.environ.get(f"OUTPOST_{service.upper()}_{key.upper()}", default)


def add_common_flags(parser: argparse.ArgumentParser, service: str) -> None:
    """Flags every service process takes: logs and metrics."""
    parser.add_argument(
        "--log-format",
        choices=["json", "console"],
        default=env_default(service, "log_format", "json"),
        help=f"json for deployments, console for people (env OUTPOST_{service.upper()}_LOG_FORMAT)",
    )
    parser.add_argument(
        "--log-level",
        default=env_default(service, "log_level", "info"),
        help=f"debug, info, warning or error (env OUTPOST_{service.upper()}_LOG_LEVEL)",
    )


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse
