"""Run `configure_logging` into a captured stream, then put logging back as pytest had it."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator

import structlog

from outpost.logs import LogFormat, configure_logging


@contextlib.contextmanager
def configured_logging(fmt: LogFormat, service: str = "gateway") -> Iterator[io.StringIO]:
    """Everything logged inside lands in the yielded stream, rendered as a service would."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    stream = io.StringIO()
    stderr, sys.stderr = sys.stderr, stream
    try:
        configure_logging(fmt, "info", service=service)
    finally:
        sys.stderr = stderr
    # Module loggers first used now must not keep this stream after the test.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield stream
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)
