"""Library logs (stdlib `logging`, `warnings`) come out in the same format as our own events."""

from __future__ import annotations

import json
import logging
import warnings

import structlog

from tests.captured_logging import configured_logging

KEYS = {"event", "level", "logger", "timestamp", "service"}


def emit_one_of_each() -> None:
    structlog.get_logger("services.gateway.app").info("gateway_started", grpc="127.0.0.1:50061")
    logging.getLogger("aiohttp.access").info("GET /metrics 200")  # below the library floor: dropped
    logging.getLogger("aiohttp.access").warning('127.0.0.1 "GET /v1/agent" %d', 400)
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("pysnmp: this API is deprecated", DeprecationWarning, stacklevel=1)


def test_in_json_mode_every_line_is_one_object_with_the_common_keys() -> None:
    with configured_logging("json") as stream:
        emit_one_of_each()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all(line.keys() >= KEYS for line in lines), lines
    assert all(line["service"] == "gateway" for line in lines)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("services.gateway.app", "info"),
        ("aiohttp.access", "warning"),
        ("asyncio", "error"),
        ("py.warnings", "warning"),
    ]
    ours, access, crash, warning = lines
    assert ours["event"] == "gateway_started" and ours["grpc"] == "127.0.0.1:50061"
    assert access["event"] == '127.0.0.1 "GET /v1/agent" 400'
    assert "ConnectionResetError: peer went away" in crash["exception"]
    assert "pysnmp: this API is deprecated" in warning["event"]


def test_in_console_mode_library_lines_read_like_ours() -> None:
    with configured_logging("console") as stream:
        emit_one_of_each()

    lines = stream.getvalue().splitlines()
    started = next(line for line in lines if "gateway_started" in line)
    access = next(line for line in lines if "GET /v1/agent" in line)
    assert not started.startswith("{") and not access.startswith("{")
    for line, logger in ((started, "services.gateway.app"), (access, "aiohttp.access")):
        assert logger in line and "service=gateway" in line
    assert "GET /metrics" not in stream.getvalue()
    assert "ConnectionResetError: peer went away" in stream.getvalue()
