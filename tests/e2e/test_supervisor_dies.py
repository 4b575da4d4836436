"""A SIGKILLed `outpost-run` takes its services with it: ports free, pids gone.

`make run` after a crashed or killed supervisor must not find the previous run's
services still holding the ports (`PR_SET_PDEATHSIG`, see `outpost.supervisor`).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from functools import partial
from pathlib import Path

from outpost.ready import read_ready_file
from tests.process_harness import pid_running, start_outpost_run, wait_for

SERVICES = ("registry", "scheduler", "gateway")


def _bindable(port: int) -> bool:
    """Whether a server could listen on `port` now, binding the way ours do (SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        sock.listen()
        return True


def test_services_exit_and_free_their_ports_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    supervisor, ports, data_dir = start_outpost_run(tmp_path)
    pids: dict[str, int] = {}
    try:
        ready = {
            service: wait_for(partial(read_ready_file, data_dir / "run" / f"{service}.ready"), 60, what=service)
            for service in SERVICES
        }
        wait_for(lambda: "Ctrl-C stops everything." in supervisor.log(), what="the banner printed")
        pids.update({service: info["pid"] for service, info in ready.items()})
        for service, pid in pids.items():
            # Forked by the supervisor's event-loop thread, which is still alive: the
            # death signal did not fire early (it is tied to the forking thread).
            assert pid_running(pid), f"{service} died before the supervisor did"
            assert _parent_of(pid) == supervisor.pid
        assert not any(_bindable(port) for port in ports.values())  # every listener is up

        supervisor.stop(sig=signal.SIGKILL)

        wait_for(lambda: all(_bindable(port) for port in ports.values()), timeout=5, what="every port free")
        wait_for(lambda: not any(pid_running(pid) for pid in pids.values()), timeout=5, what=f"{pids} gone")
        # They were told with SIGTERM, so they drained rather than died mid-write.
        assert "gateway_draining" in supervisor.log()
    finally:
        supervisor.stop()
        for pid in pids.values():  # only if the test failed: later tests need the ports
            if pid_running(pid):
                os.kill(pid, signal.SIGKILL)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])
