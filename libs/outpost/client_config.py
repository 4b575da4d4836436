"""outpostctl's contexts: which control plane to call, and with which token (like kubeconfig).

One JSON file per user, mode 0600 in a 0700 directory: `$OUTPOST_CONFIG`, else
`$XDG_CONFIG_HOME/outpost/config.json`, else `~/.config/outpost/config.json`. Each named
context holds the three service addresses, the admin token and an optional CA file;
`current_context` names the one outpostctl uses when no flag says otherwise.

`outpost-run` writes the context `local` on every start (the addresses it listens on and
the bootstrap admin token of its data directory), which is why `outpostctl` works with no
flags right after `make run`, for the same user on the same machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "OUTPOST_CONFIG"
LOCAL_CONTEXT = "local"


@dataclass(frozen=True)
class Context:
    registry: str = ""
    scheduler: str = ""
    gateway: str = ""
    token: str = ""
    ca_file: str = ""


@dataclass
class ClientConfig:
    current_context: str = ""
    contexts: dict[str, Context] = field(default_factory=dict)

    def current(self) -> Context | None:
        return self.contexts.get(self.current_context)


def config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "outpost" / "config.json"


def load(path: Path | None = None) -> ClientConfig:
    """The config at `path` (default `config_path()`); empty when there is none.

    ValueError when the file exists but is not a config outpostctl wrote.
    """
    path = path or config_path()
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("contexts", {}), dict):
        raise ValueError(f"{path} is not an outpostctl config")
    contexts = {}
    for name, values in raw.get("contexts", {}).items():
        if not isinstance(values, dict):
            raise ValueError(f"{path}: context {name!r} is not an object")
        known = {k: str(v) for k, v in values.items() if k in Context.__dataclass_fields__}
        contexts[str(name)] = Context(**known)
    return ClientConfig(current_context=str(raw.get("current_context", "")), contexts=contexts)


def save_context(name: str, context: Context, *, make_current: bool = True, path: Path | None = None) -> Path:
    """Add or replace context `name` (and make it current); returns the file written."""
    path = path or config_path()
    config = load(path)
    config.contexts[name] = context
    if make_current or not config.current_context:
        config.current_context = name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps(
        {"current_context": config.current_context, "contexts": {k: asdict(v) for k, v in config.contexts.items()}},
        indent=2,
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path
