"""Device lifecycle through real processes: a host that goes silent misses runs, retires, and comes back.

The world on loopback: two addresses with a listener each, scanned by one discovery (TCP
only). Silencing 127.0.61.2 is an nftables rule dropping every packet to it on input (a
loopback address otherwise answers every port, refused or open), in a table of this test's
own that is removed afterwards. The gateway retires after 2 missed runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_discovery_flow import enabled_collector
from tests.process_harness import ControlPlane

SEEN, SILENT = "127.0.61.1", "127.0.61.2"


@pytest.fixture
def listeners() -> Iterator[int]:
    """One port number with a listener on both addresses."""
    first = socket.socket()
    first.bind((SEEN, 0))
    number = first.getsockname()[1]
    second = socket.socket()
    second.bind((SILENT, number))
    for sock in (first, second):
        sock.listen(16)
    try:
        yield number
    finally:
        first.close()
        second.close()


class Silence:
    """Drops every packet to an address while on; its own nftables table, removed at the end."""

    def __init__(self, address: str) -> None:
        self.table = f"outpost_lifecycle_{os.getpid()}"
        self.address = address

    def on(self) -> None:
        script = (
            f"add table inet {self.table}\n"
            f"add chain inet {self.table} input {{ type filter hook input priority 0; }}\n"
            f"add rule inet {self.table} input ip daddr {self.address} drop\n"
        )
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, timeout=10)

    def off(self) -> None:
        subprocess.run(["nft", "delete", "table", "inet", self.table], check=False, capture_output=True, timeout=10)


@pytest.fixture
def silence() -> Iterator[Silence]:
    rule = Silence(SILENT)
    try:
        yield rule
    finally:
        rule.off()


@pytest.fixture
def retiring_plane(tmp_path: Path, database_url: str) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "server", database_url, gateway_args=["--retire-after-missed-runs", "2"]).start()
    try:
        yield plane
    finally:
        plane.stop()


def run(plane: ControlPlane) -> None:
    summary = json.loads(plane.ctl("discoveries", "run", "life", "--wait", "--json").stdout)
    assert summary["state"] == "succeeded", summary


def shown(plane: ControlPlane, ip: str) -> dict[str, Any]:
    return dict(json.loads(plane.ctl("devices", "show", ip, "--json").stdout))


def listed(plane: ControlPlane, *flags: str) -> set[str]:
    return {d["ip"] for d in json.loads(plane.ctl("devices", "list", "--json", *flags).stdout)}


def test_a_silent_host_misses_runs_retires_and_returns_when_it_answers_again(
    retiring_plane: ControlPlane, tmp_path: Path, listeners: int, silence: Silence
) -> None:
    plane = retiring_plane
    collector = enabled_collector(plane, tmp_path, "edge-life")
    try:
        plane.ctl(
            "discoveries",
            "create",
            "life",
            "--targets",
            f"{SEEN}-{SILENT}",
            "--ports",
            str(listeners),
            "--probes",
            "tcp",
            "--timeout-ms",
            "300",
            "--collector",
            "edge-life",
        )
        run(plane)
        assert listed(plane) == {SEEN, SILENT}
        before = shown(plane, SILENT)

        silence.on()
        run(plane)
        missed = shown(plane, SILENT)
        assert (missed["missed_runs"], missed["retired"], shown(plane, SEEN)["missed_runs"]) == (1, False, 0)
        assert (missed["open_ports"], missed["hostname"], missed["history"]) == (
            before["open_ports"],
            before["hostname"],
            before["history"],
        )

        run(plane)
        retired = shown(plane, SILENT)
        assert (retired["missed_runs"], retired["retired"], bool(retired["retired_at"])) == (2, True, True)
        assert [(c["field"], c["old_value"], c["new_value"]) for c in retired["history"]][-1] == (
            "retired",
            "",
            "missed 2 runs",
        )
        assert listed(plane) == {SEEN}
        assert listed(plane, "--include-retired") == {SEEN, SILENT}
        assert "retired" in plane.ctl("devices", "show", SILENT).stdout

        silence.off()
        run(plane)
        back = shown(plane, SILENT)
        assert (back["missed_runs"], back["retired"], back["retired_at"]) == (0, False, None)
        assert [(c["field"], c["old_value"], c["new_value"]) for c in back["history"]][-1] == (
            "retired",
            "missed 2 runs",
            "",
        )
        assert listed(plane) == {SEEN, SILENT}
    finally:
        collector.stop()
