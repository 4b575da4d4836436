"""structlog configuration, done once per process from its app.py.

JSON lines for deployments (one object per event, machine-parsable), a console renderer
for people. `merge_contextvars` comes first so ids bound with
`structlog.contextvars.bind_contextvars` (collector, session_id) ride on every line.

Libraries log through the stdlib `logging` module (grpc, aiohttp, asyncio, alembic,
SQLAlchemy, asyncssh) and `warnings` (pysnmp); a plain-text line among JSON ones breaks
whoever parses the stream. So the root logger gets one handler whose
`structlog.stdlib.ProcessorFormatter` runs those records through the same processors and
renderer as our own events: every line carries `event`, `level`, `logger`, `timestamp`
and `service`, in either format. The handler writes with structlog's `PrintLogger`, so
both kinds of line share one lock per stream and never interleave mid-line.

Library records below WARNING are dropped at the root (aiohttp logs every request at
INFO, alembic every migration step), whatever `--log-level` says for our own events.
Nothing here reads a config file: Alembic's `env.py` files do not call `fileConfig`, so
migrations leave this setup as it is.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

LIBRARY_LEVEL_FLOOR = logging.WARNING


def configure_logging(fmt: LogFormat = "json", level: str = "info", service: str = "") -> None:
    """Route structlog and stdlib logging (libraries, warnings) to stderr in one format."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise SystemExit(f"invalid log level {level!r}; use debug, info, warning or error")
    stream = sys.stderr
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        shared.append(_add_service(service))
    if fmt == "console":
        # JSON escapes control characters itself; a console would obey them, and collector
        # names and addresses come from the network.
        shared.append(_escape_control_characters)
    shared += [structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_NamedPrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    handler = _PrintHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, LIBRARY_LEVEL_FLOOR))
    logging.captureWarnings(True)


class _NamedPrintLogger(structlog.PrintLogger):
    """A PrintLogger that keeps the name given to `get_logger(__name__)`, for the `logger` key."""

    def __init__(self, file: TextIO | None = None, name: str = "") -> None:
        super().__init__(file)
        self.name = name

    def __deepcopy__(self, memodict: dict[str, object]) -> _NamedPrintLogger:
        return _NamedPrintLogger(self._file, self.name)


class _NamedPrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(self._file, str(args[0]) if args else "")


class _PrintHandler(logging.Handler):
    """Writes formatted stdlib records through a structlog PrintLogger (the same lock)."""

    def __init__(self, file: TextIO) -> None:
        super().__init__()
        self._printer = structlog.PrintLogger(file)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:
            self.handleError(record)


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
