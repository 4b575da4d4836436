"""Which context and which admin token a command uses.

The token: `--token-file FILE` (or `OUTPOST_TOKEN_FILE`), else `OUTPOST_TOKEN`, else the
context's. The context: `--context NAME` (or `OUTPOST_CONTEXT`), else the config file's
current one (`outpost.client_config`; `make run` writes `local`). The source is kept so a
refusal can say which token was refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from outpost import client_config
from outpost.auth import bearer
from outpostctl.errors import CommandError

SECRET_VARIABLE = "OUTPOST_TOKEN"  # noqa: S105 (a variable name)


def load_context(name: str | None) -> client_config.Context | None:
    """The named (or current) context; None when there is no config file or no current one."""
    try:
        config = client_config.load()
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if name is None:
        return config.current()
    if name not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise CommandError(f"no context {name!r} in {client_config.config_path()} (known: {known})")
    return config.contexts[name]


def resolve_token(token_file: Path | None, context: client_config.Context | None) -> tuple[str | None, str]:
    """The token and where it came from ("none" when there is none)."""
    if token_file is not None:
        try:
            return bearer.read_secret_file(token_file), f"--token-file {token_file}"
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the token file: {exc}") from exc
    from_env = os.environ.get(SECRET_VARIABLE, "").strip()
    if from_env:
        return from_env, SECRET_VARIABLE
    if context is not None and context.token:
        return context.token, f"the context in {client_config.config_path()}"
    return None, "none"
