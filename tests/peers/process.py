"""Start, wait for and stop peer processes and threads; pick free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.01


class PeerError(RuntimeError):
    """A peer did not start; the message carries the end of its log."""


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody uses on `host` right now (the peer binds it a moment later)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `condition` until it holds; PeerError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise PeerError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def port_accepts(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class PeerProcess:
    """A child process whose stdout and stderr go to `log_file`; stopped by its pid."""

    def __init__(self, argv: Sequence[str], log_file: Path, env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_file = log_file
        self._log_offset = log_file.stat().st_size if log_file.exists() else 0
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self, path: Path | None = None) -> str:
        """What this process logged (to `log_file`, or to `path`, a log it writes itself)."""
        if path is not None:
            return path.read_text(errors="replace") if path.exists() else ""
        with self.log_file.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = START_TIMEOUT, *, path: Path | None = None) -> None:
        """Wait until this process logs `text` (to `log_file`, or to `path`)."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise PeerError(f"{self.argv[0]} exited with {self.process.returncode}:\n{self.log_text()[-2000:]}")
            return text in self.log_text(path)

        try:
            wait_until(ready, f"{text!r} in the log of {self.argv[0]}", timeout)
        except PeerError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; only this pid."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)
