"""Whether the server has registered this collector, so its enrollment token is sent no more.

A collector started with an enrollment token (ADR 0022) sends it in its Hello only until
the server says it is registered (a Welcome or StateChange saying enabled or disabled).
That fact is kept in the data directory (`registered`, mode 0600, written atomically), so
a restart with the token file still in place does not send the token again: a leftover
file is harmless, and a token is never shown to a server that has no use for it. A
reinstall (fresh data directory) is a new collector and sends its token again.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

FILE = "registered"


class RegistrationRecord:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE
        self._registered = self.path.exists()

    @property
    def registered(self) -> bool:
        return self._registered

    def mark_registered(self, state: str) -> bool:
        """Record that the server registered this collector; True the first time. Raises OSError."""
        if self._registered:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            record = {"state": state, "at": datetime.now(UTC).isoformat(timespec="seconds")}
            os.write(fd, (json.dumps(record) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._registered = True
        return True
