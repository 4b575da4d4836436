"""SSH host keys trusted on first use, per host and port, kept in a JSON Lines file.

The first time the audit reaches `host:port` it records the key's type and SHA-256
fingerprint. Afterwards a different key is a *change*: the audit reports
`SshInfo.host_key_changed` and does not log in, so credentials are never sent to a
host that may be an impostor. An operator who knows why the key changed (a reinstall)
calls `forget(host, port)`; the next run records the new key.

One JSON object a line, appended as keys are first seen (a run over thousands of SSH
hosts writes each record once instead of rewriting one growing document); `forget`
rewrites the file. A line that does not parse is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

FILE_NAME = "ssh_host_keys.jsonl"


@dataclass(frozen=True)
class HostKeyRecord:
    host: str
    port: int
    key_type: str
    fingerprint: str
    first_seen: str


class HostKeyStore:
    """Trust-on-first-use store of SSH host keys under `directory` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        self._path = Path(directory) / FILE_NAME
        self._records: dict[tuple[str, int], HostKeyRecord] = {}
        self._load()

    @property
    def path(self) -> Path:
        return self._path

    def lookup(self, host: str, port: int) -> HostKeyRecord | None:
        return self._records.get((host, port))

    def check(self, host: str, port: int, key_type: str, fingerprint: str) -> bool:
        """True when the key is trusted: first use (recorded now) or the recorded one."""
        known = self._records.get((host, port))
        if known is None:
            record = HostKeyRecord(host, port, key_type, fingerprint, dt.datetime.now(dt.UTC).isoformat())
            self._records[(host, port)] = record
            self._append(record)
            return True
        return known.fingerprint == fingerprint

    def forget(self, host: str, port: int) -> bool:
        """Drop the record of host:port so the next contact is a first use again."""
        if self._records.pop((host, port), None) is None:
            return False
        self._rewrite()
        return True

    def _load(self) -> None:
        try:
            lines = self._path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = HostKeyRecord(**json.loads(line))
            except (TypeError, ValueError):
                log.warning("host_key_line_skipped", path=str(self._path), line=number)
                continue
            self._records.setdefault((record.host, record.port), record)

    def _append(self, record: HostKeyRecord) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(asdict(record), sort_keys=True) + "\n")

    def _rewrite(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            for record in self._records.values():
                file.write(json.dumps(asdict(record), sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)
