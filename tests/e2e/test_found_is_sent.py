"""Nothing found is dropped, end to end (issue 10, item 4): a host found before a stretch of
silent addresses reaches the inventory within the batch linger, while the run is still going
(the linger is a timer, not a check made when the next host answers); it is stored at the
time it was observed; and what the probes said about it ("dns: the resolver did not answer
in time") is kept as its notes and shown by `outpostctl devices show` (text and --json).

The silent addresses are loopback addresses behind an nftables drop rule (a table of this
test's own, removed afterwards), so connects to them time out; the DNS resolver is a UDP
socket that never answers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.test_discovery_flow import enabled_collector
from tests.process_harness import ControlPlane, wait_for

HOST = "127.0.53.1"
SILENT = [f"127.0.53.{i}" for i in range(2, 22)]
RESOLVER = "127.0.53.99"
TABLE = "outpost_e2e_found_is_sent"
TIMEOUT_MS = 1000


@pytest.fixture
def silent_addresses() -> Iterator[None]:
    """Drop everything sent to SILENT: no refusal, no answer, a timeout."""
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True, check=False)
    ruleset = (
        f"table inet {TABLE} {{\n chain out {{\n  type filter hook output priority 0; policy accept;\n"
        f"  ip daddr {SILENT[0]}-{SILENT[-1]} drop\n }}\n}}\n"
    )
    subprocess.run(["nft", "-f", "-"], input=ruleset, check=True, capture_output=True, text=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", TABLE], check=True, capture_output=True)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_host_found_before_silent_addresses_is_stored_within_the_linger_with_its_notes(
    control_plane: ControlPlane, tmp_path: Path, silent_addresses: None
) -> None:
    server = socket.create_server((HOST, 0))
    port = server.getsockname()[1]
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind((RESOLVER, 53))  # hears every query, answers none
    collector = enabled_collector(control_plane, tmp_path, "edge-linger")
    try:
        control_plane.ctl(
            "discoveries", "create", "linger", "--collector", "edge-linger",
            "--targets", ",".join([HOST, *SILENT]), "--ports", str(port), "--probes", "tcp,dns",
            "--dns-resolver", f"{RESOLVER}:53", "--timeout-ms", str(TIMEOUT_MS), "--concurrency", "1",
        )  # fmt: skip
        started = time.monotonic()
        run_id = json.loads(control_plane.ctl("discoveries", "run", "linger", "--json").stdout)["id"]

        def stored() -> dict[str, object] | None:
            shown = control_plane.ctl("devices", "show", HOST, "--json", check=False)
            return json.loads(shown.stdout) if shown.returncode == 0 else None

        found = wait_for(stored, timeout=10, interval=0.1, what=f"{HOST} in the inventory")
        seen_after = time.monotonic() - started
        first_seen_at = datetime.now(UTC)
        run = json.loads(control_plane.ctl("jobs", "show", run_id, "--json").stdout)

        # 20 silent addresses, one at a time, each a 1 s timeout: the run has ~20 s to go.
        assert run["state"] in ("dispatched", "running"), run
        assert seen_after < 8, seen_after
        assert found["notes"] == ["dns: the resolver did not answer in time"]
        assert "dns: the resolver did not answer in time" in control_plane.ctl("devices", "show", HOST).stdout

        def finished() -> dict[str, object] | None:
            shown = json.loads(control_plane.ctl("jobs", "show", run_id, "--json").stdout)
            return shown if shown["state"] == "succeeded" else None

        done = wait_for(finished, timeout=90, interval=0.5, what="the run to finish")
        assert when(str(found["last_seen"])) <= first_seen_at < when(str(done["finished_at"]))
        assert (done["devices_found"], done["targets_done"]) == (1, 21)
    finally:
        server.close()
        resolver.close()
        collector.stop()
