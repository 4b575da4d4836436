"""structlog configuration, done once per process from its app.py.

JSON lines for deployments (one object per event, machine-parsable), a console renderer
for people. `merge_contextvars` comes first so ids bound with
`structlog.contextvars.bind_contextvars` (collector, session_id) ride on every line.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["json", "console"]


def configure_logging(fmt: LogFormat = "json", level: str = "info", service: str = "") -> None:
    """Route structlog (and stdlib logging from libraries) to stderr in one format."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise SystemExit(f"invalid log level {level!r}; use debug, info, warning or error")
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        processors.append(_add_service(service))
    if fmt == "console":
        # JSON escapes control characters itself; a console would obey them, and collector
        # names and addresses come from the network.
        processors.append(_escape_control_characters)
    processors += [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), 127] if chr(c) not in "\n\t"}


def _escape_control_characters(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = value.translate(_CONTROL)
    return event


def _add_service(service: str) -> structlog.types.Processor:
    def add(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
        event.setdefault("service", service)
        return event

    return add
