"""Reading settings from flags and `OUTPOST_<SERVICE>_<KEY>` environment variables.

Only `app.py` modules call these. A flag wins over the environment, the environment over
the default; a bad value ends the process at start with one clear line.
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from outpost.numbers import is_ascii_digits
from outpost.version import PROTOCOL_VERSION, VERSION


def env_default(service: str, key: str, default: Any = None) -> Any:
    return os.environ.get(f"OUTPOST_{service.upper()}_{key.upper()}", default)


class HelpFormatter(argparse.HelpFormatter):
    """`--help` that shows each flag's default, as the process would use it now.

    The default is what the flag falls back to after the environment, so an exported
    `OUTPOST_<SERVICE>_<KEY>` shows up here. A help text that already says its default
    ("default: <data-dir>/access.key") is left alone; so are flags whose default is None or
    off (nothing to show, or computed at start: their help says how).
    """

    def _format_action(self, action: argparse.Action) -> str:
        shown = _shown_default(action)
        if not action.help and shown is not None:
            action = copy.copy(action)  # argparse skips the help of a flag that has none
            action.help = f"default: {shown}"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = (action.help or "").strip()
        shown = _shown_default(action)
        if shown is None or "default" in text.lower():
            return text
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def _shown_default(action: argparse.Action) -> str | None:
    """The "%(default)s" to append to a flag's help, or None when there is nothing to show."""
    if not action.option_strings or isinstance(action, argparse._VersionAction | argparse._HelpAction):
        return None
    if action.default in (None, False, [], argparse.SUPPRESS):
        return None
    return "empty" if action.default == "" else "%(default)s"


def version_text() -> str:
    """What `--version` prints after the program name: the release and the agent protocol."""
    return f"{VERSION} (agent protocol {PROTOCOL_VERSION})"


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"%(prog)s {version_text()}")


def add_common_flags(parser: argparse.ArgumentParser, service: str) -> None:
    """Flags every service process takes: logs and version."""
    add_version_flag(parser)
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


def host_port(text: str) -> str:
    """A `--listen`-style flag: host:port, port 0 for any free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not is_ascii_digits(port) or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected host:port (port 0 for any free one), got {text!r}")
    return text


def optional_host_port(text: str) -> str:
    """A host:port flag that may be empty (off), such as `--metrics-listen`."""
    return text if text == "" else host_port(text)


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_watch_flags(parser: argparse.ArgumentParser, service: str) -> None:
    """How a service with change feeds (registry, scheduler) notices other replicas' writes."""
    parser.add_argument(
        "--watch-wakeup",
        choices=["listen", "poll"],
        default=env_default(service, "watch_wakeup", "listen"),
        help="listen: on PostgreSQL, LISTEN/NOTIFY wakes watches when another replica commits (a safety "
        "read every 5 s; polling every 250 ms while the listening connection is down); poll: read every "
        f"250 ms. SQLite always polls (env OUTPOST_{service.upper()}_WATCH_WAKEUP)",
    )


def add_secret_flags(parser: argparse.ArgumentParser, service: str, key: str, help: str) -> None:
    """`--<key>` and `--<key>-file` (env `OUTPOST_<SERVICE>_<KEY>` / `..._<KEY>_FILE`): one secret, two ways.

    A value on a command line is visible in `ps` and an environment variable in
    /proc/PID/environ of the same user and in crash reports; the file form takes it from a
    file only this process reads: systemd's `LoadCredential=` ($CREDENTIALS_DIRECTORY), a
    Kubernetes Secret volume. `secret_value` reads it back and refuses both at once.
    """
    flag = "--" + key.replace("_", "-")
    variable = f"OUTPOST_{service.upper()}_{key.upper()}"
    parser.add_argument(flag, default=env_default(service, key), help=f"{help} (env {variable})")
    parser.add_argument(
        f"{flag}-file",
        metavar="FILE",
        default=env_default(service, f"{key}_file"),
        help=f"a file holding the value of {flag} (one line), e.g. a systemd credential "
        f"($CREDENTIALS_DIRECTORY/...) or a mounted Secret (env {variable}_FILE)",
    )


def secret_value(parser: argparse.ArgumentParser, args: argparse.Namespace, key: str) -> str | None:
    """The value of a pair from `add_secret_flags`: the flag, or the file's one line; None when neither.

    Ends the process through `parser.error` when both are given, or the file cannot be read
    or is empty; the message names the file, never its content.
    """
    flag = "--" + key.replace("_", "-")
    value: str | None = getattr(args, key)
    file: str | None = getattr(args, f"{key}_file")
    if value and file:
        parser.error(f"give {flag} or {flag}-file, not both")
    if not file:
        return value or None
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"{flag}-file {file}: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}")
    text = text.strip()
    if not text:
        parser.error(f"{flag}-file {file}: empty")
    if "\n" in text:
        parser.error(f"{flag}-file {file}: more than one line")
    return text
