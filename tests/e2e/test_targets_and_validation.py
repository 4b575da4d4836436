"""Targets as docs/discovery.md documents them, and what create refuses, with the real processes.

One parser (`outpost.targets`) serves outpostctl, the scheduler and the collector: every
documented form is accepted by the CLI, stored, and scanned by the collector, and an
IPv4-mapped IPv6 address is the IPv4 host it carries (one device, not two). What a run
could never do is refused when the discovery is created, not at every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_discovery_flow import enabled_collector
from tests.process_harness import ControlPlane, wait_for

# Every row of the targets table in docs/discovery.md, on loopback; port 9 has no
# listener, so each address refuses the connection and is reported alive by tcp.
FORMS = {
    "CIDR": ("127.0.61.0/30", {"127.0.61.0", "127.0.61.1", "127.0.61.2", "127.0.61.3"}),
    "Range": ("127.0.61.8-127.0.61.9", {"127.0.61.8", "127.0.61.9"}),
    "Last-octet range": ("127.0.61.12-13", {"127.0.61.12", "127.0.61.13"}),
    "Address": ("127.0.61.16", {"127.0.61.16"}),
    "IPv6 address": ("::1", {"::1"}),
    "IPv6 CIDR": ("::1/128", {"::1"}),
    "IPv6 range": ("::1-::1", {"::1"}),
    "IPv4-mapped address": ("::ffff:127.0.61.20", {"127.0.61.20"}),
    "IPv4-mapped CIDR": ("::ffff:127.0.61.24/126", {"127.0.61.24", "127.0.61.25", "127.0.61.26", "127.0.61.27"}),
    "Host name": ("localhost", {"127.0.0.1"}),
}


def test_every_documented_target_form_is_accepted_by_the_cli_and_the_collector_alike(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    collector = enabled_collector(control_plane, tmp_path, "edge-forms")
    try:
        targets = ",".join(text for text, _ in FORMS.values())
        control_plane.ctl(
            "discoveries", "create", "forms", "--targets", targets, "--ports", "9", "--probes", "tcp",
            "--collector", "edge-forms",
        )  # fmt: skip
        stored = json.loads(control_plane.ctl("discoveries", "show", "forms", "--json").stdout)["targets"]
        assert not [t for t in stored if "::ffff:" in t], stored
        assert "127.0.61.12-127.0.61.13" in stored

        summary = json.loads(control_plane.ctl("discoveries", "run", "forms", "--wait", "--json").stdout)
        expected = set().union(*(addresses for _, addresses in FORMS.values()))
        assert summary["state"] == "succeeded", summary
        assert summary["targets_total"] == len(expected)

        devices = {d["ip"] for d in json.loads(control_plane.ctl("devices", "list", "--json").stdout)}
        assert devices >= expected
        assert not [ip for ip in devices if ip.startswith("::ffff:")], devices

        # The mapped form again, alone: the same device is seen again, no second one appears.
        control_plane.ctl(
            "discoveries", "create", "mapped", "--targets", "::ffff:127.0.61.20", "--ports", "9", "--probes", "tcp",
            "--collector", "edge-forms",
        )  # fmt: skip
        again = json.loads(control_plane.ctl("discoveries", "run", "mapped", "--wait", "--json").stdout)
        assert (again["state"], again["devices_found"]) == ("succeeded", 1)
        after = {d["ip"] for d in json.loads(control_plane.ctl("devices", "list", "--json").stdout)}
        assert after == devices
    finally:
        collector.stop()


def test_what_a_run_could_never_do_is_refused_at_create(control_plane: ControlPlane, tmp_path: Path) -> None:
    collector = enabled_collector(control_plane, tmp_path, "edge-known")
    try:
        refused = control_plane.ctl(
            "discoveries", "create", "loopback", "--targets", "127.0.0.0/8", "--ports", "22",
            "--collector", "edge-known", check=False,
        )  # fmt: skip
        assert refused.returncode == 1, refused
        assert "16,777,216 addresses; a discovery scans at most 1,048,576" in refused.stderr

        typo = control_plane.ctl(
            "discoveries", "create", "typo", "--targets", "127.0.62.1", "--ports", "22", "--collector", "nosuch",
            check=False,
        )  # fmt: skip
        assert typo.returncode == 1, typo
        assert "no collector named 'nosuch' is registered" in typo.stderr and "--allow-unknown" in typo.stderr

        huge = control_plane.ctl(
            "discoveries", "create", "n" * 10_000, "--targets", "127.0.62.1", "--ports", "22",
            "--collector", "edge-known", check=False,
        )  # fmt: skip
        assert huge.returncode == 1, huge
        assert "at most 128 characters" in huge.stderr and len(huge.stderr) < 1000

        minus = control_plane.ctl("config", "set", "collector_check_minutes", "-1", check=False)
        assert minus.returncode == 2 and "from 1 to 1440" in minus.stderr and "No such option" not in minus.stderr

        # Accepted on purpose: the run waits, and says why.
        control_plane.ctl(
            "discoveries", "create", "later", "--targets", "127.0.62.1", "--ports", "22", "--collector", "edge-later",
            "--allow-unknown",
        )  # fmt: skip
        run = json.loads(control_plane.ctl("discoveries", "run", "later", "--json").stdout)

        def waiting_reason() -> str | None:
            shown = json.loads(control_plane.ctl("jobs", "show", run["id"], "--json").stdout)
            return str(shown["waiting_reason"]) or None

        reason = wait_for(waiting_reason, 30, interval=0.5, what="the run's waiting reason")
        assert reason == "no collector named 'edge-later' is registered"
        listed = json.loads(control_plane.ctl("jobs", "list", "--discovery", "later", "--json").stdout)
        assert [j["waiting_reason"] for j in listed] == [reason]
    finally:
        collector.stop()
