"""The optional status file: where the collector stands, for supervisors and tests.

With `--status-file PATH` the collector rewrites one JSON object there (atomically, via
`outpost.ready.write_ready_file`) on every change of state:

    {"pid": 4242, "state": "pending", "server": "grpc://gw-1:50061",
     "session_id": "...", "server_instance": "...",
     "fingerprint": "SHA256:...", "instance_uid": "..."}

`state` is one of pending, enabled, disabled, disconnected. `server`, `session_id` and
`server_instance` are empty until a session is accepted; once the session ends the file
says disconnected with the server it was last connected to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import structlog

from outpost.ready import write_ready_file

log = structlog.get_logger(__name__)

StatusState = Literal["pending", "enabled", "disabled", "disconnected"]


@dataclass(frozen=True)
class StatusFile:
    path: str | None
    instance_uid: str
    fingerprint: str

    def write(self, state: StatusState, *, server: str = "", session_id: str = "", server_instance: str = "") -> None:
        """Rewrite the file; a failure is logged, never fatal (the file is a convenience)."""
        if not self.path:
            return
        try:
            write_ready_file(
                self.path,
                state=state,
                server=server,
                session_id=session_id,
                server_instance=server_instance,
                fingerprint=self.fingerprint,
                instance_uid=self.instance_uid,
            )
        except OSError as exc:
            log.warning("status_file_write_failed", path=self.path, error=str(exc))
