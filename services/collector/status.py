"""The optional status file: where the collector stands, for supervisors and tests.

With `--status-file PATH` the collector rewrites one JSON object there (atomically, via
`outpost.ready.write_ready_file`) on every change of state, and with every heartbeat it
sends (so the spool figures stay current):

    {"pid": 4242, "state": "pending", "server": "grpc://gw-1:50061",
     "session_id": "...", "server_instance": "...",
     "fingerprint": "SHA256:...", "instance_uid": "...",
     "spool": {"batches": 0, "bytes": 0, "max_bytes": 268435456, "max_age_seconds": 604800,
               "oldest_unix_ms": 0, "dropped_full": 0, "dropped_expired": 0,
               "dropped_corrupt": 0, "dropped_devices": 0}}

`state` is one of pending, enabled, disabled, disconnected. `server`, `session_id` and
`server_instance` are empty until a session is accepted; once the session ends the file
says disconnected with the server it was last connected to. `spool` is there when the
collector has a spool (always, in the real process).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from outpost.agent.v1 import agent_pb2
from outpost.ready import write_ready_file

log = structlog.get_logger(__name__)

StatusState = Literal["pending", "enabled", "disabled", "disconnected"]


@dataclass
class StatusFile:
    path: str | None
    instance_uid: str
    fingerprint: str
    spool: Callable[[], agent_pb2.SpoolStatus] | None = None
    _last: dict[str, Any] | None = field(default=None, repr=False)

    def write(self, state: StatusState, *, server: str = "", session_id: str = "", server_instance: str = "") -> None:
        """Rewrite the file; a failure is logged, never fatal (the file is a convenience)."""
        self._last = {
            "state": state,
            "server": server,
            "session_id": session_id,
            "server_instance": server_instance,
        }
        self.refresh()

    def refresh(self) -> None:
        """Rewrite the file as last written, with the spool figures as they are now."""
        if not self.path or self._last is None:
            return
        spool = {}
        if self.spool is not None:
            status = self.spool()
            spool["spool"] = {f.name: getattr(status, f.name) for f in status.DESCRIPTOR.fields}
        try:
            write_ready_file(
                self.path,
                **self._last,
                fingerprint=self.fingerprint,
                instance_uid=self.instance_uid,
                **spool,
            )
        except OSError as exc:
            log.warning("status_file_write_failed", path=self.path, error=str(exc))
