"""Secrets come from a file or stdin, never from a command-line flag.

A secret given as a flag value is visible to every local user through `ps` and stays in
shell history, so each secret outpostctl sends has a `--X-file FILE` flag and, where it
makes sense, a `--X-stdin` flag. Giving both for one secret is a usage error.

stdin is one stream, so it carries one secret. A command taking two secrets (an SNMPv3
auth key and privacy key, an SSH key and its passphrase) refuses a second one from stdin,
including through a file flag naming stdin (`-`, `/dev/stdin`), instead of splitting the
stream by lines, which would silently truncate a multi-line key.

On a terminal, stdin is prompted for without echo. One trailing newline is removed
(`echo` and editors add one); key files read whole (`whole=True`) are kept as they are.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import typer

from outpostctl.errors import CommandError

# File arguments that are really stdin: they count against its one secret.
STDIN_PATHS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


@dataclass(frozen=True)
class SecretSource:
    """Where one secret comes from, as its flags said."""

    label: str  # what it is, for messages and the prompt: "community", "auth key"
    file_flag: str  # "--community-file"
    stdin_flag: str | None = None  # "--community-stdin"; None when only a file is accepted
    from_stdin: bool = False
    path: Path | None = None

    @property
    def given(self) -> bool:
        return self.from_stdin or self.path is not None

    @property
    def reads_stdin(self) -> bool:
        return self.from_stdin or (self.path is not None and str(self.path) in STDIN_PATHS)

    @property
    def stdin_hint(self) -> str:
        """The flag through which it reads stdin: "--auth-key-stdin", "--priv-key-file -"."""
        if self.from_stdin and self.stdin_flag:
            return self.stdin_flag
        return f"{self.file_flag} {self.path}"

    @property
    def flags(self) -> str:
        """How to give it, for messages: "--community-file or --community-stdin"."""
        return f"{self.file_flag} or {self.stdin_flag}" if self.stdin_flag else self.file_flag


def check_sources(sources: Sequence[SecretSource]) -> None:
    """Refuse a secret given twice, or a second secret read from stdin (usage errors)."""
    for source in sources:
        if source.from_stdin and source.path is not None:
            raise typer.BadParameter(
                f"give the {source.label} once: {source.stdin_flag} or {source.file_flag}, not both",
                param_hint=source.flags,
            )
    on_stdin = [s for s in sources if s.reads_stdin]
    if len(on_stdin) > 1:
        first, second = on_stdin[0], on_stdin[1]
        raise typer.BadParameter(
            f"stdin can carry only one secret, but the {first.label} and the {second.label} both read it: "
            "give one of them in a file",
            param_hint=f"{first.stdin_hint} / {second.stdin_hint}",
        )


def require(source: SecretSource) -> None:
    """A usage error unless `source` was given."""
    if not source.given:
        raise typer.BadParameter(f"give the {source.label} with {source.flags}", param_hint=source.flags)


def refuse(source: SecretSource, reason: str) -> None:
    """A usage error if `source` was given although it makes no sense here (`reason` says why)."""
    if source.given:
        raise typer.BadParameter(reason, param_hint=source.flags)


def read_secret(source: SecretSource, *, whole: bool = False, stdin: TextIO | None = None) -> str:
    """The secret from its file or stdin; empty is a usage error. Call `check_sources` first."""
    stream = stdin if stdin is not None else sys.stdin
    if source.reads_stdin:
        text = getpass.getpass(f"{source.label}: ") if stream.isatty() else stream.read()
    else:
        assert source.path is not None, "read_secret called for a secret that was not given"
        try:
            text = source.path.read_text()
        except OSError as exc:
            raise CommandError(f"cannot read the {source.label} file {source.path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"the {source.label} file {source.path} is not UTF-8 text") from exc
    secret = text if whole else text.removesuffix("\n").removesuffix("\r")
    if not secret.strip():
        raise typer.BadParameter(f"the {source.label} is empty", param_hint=source.flags)
    return secret
