"""Ready files: how a started process tells its supervisor or test which ports it bound.

A service given `--ready-file PATH` writes one JSON object there (atomically, via rename)
once every listener is bound and it is serving, e.g.
`{"service": "registry", "pid": 123, "grpc": "127.0.0.1:50051", "metrics": "127.0.0.1:9101"}`.
Tests bind port 0 and read the real ports here instead of sleeping.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_ready_file(path: str | os.PathLike[str] | None, **fields: Any) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **fields}))
    tmp.replace(target)


def read_ready_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data
