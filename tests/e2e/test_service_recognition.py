"""The real collector names services by nmap's fingerprints; without the file it warns once and carries on.

A control plane and `outpost-collector` processes as an operator runs them; loopback
servers that greet like Postfix and vsftpd; `outpostctl devices show --json` is what the
operator reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.collector.discovery.service_probes import DEFAULT_SERVICE_PROBES_FILE
from tests.peers.greeters import FTP_GREETING, SMTP_GREETING, Greeters
from tests.process_harness import Collector, ControlPlane

PASSWORD = "recognition-test-password"
HOST = "127.0.0.118"

pytestmark = pytest.mark.skipif(
    not Path(DEFAULT_SERVICE_PROBES_FILE).exists(), reason=f"{DEFAULT_SERVICE_PROBES_FILE} is absent"
)


@pytest.fixture
def greeters() -> Iterator[dict[str, int]]:
    servers = Greeters()
    ports = {"smtp": servers.greeter(HOST, SMTP_GREETING), "ftp": servers.greeter(HOST, FTP_GREETING)}
    yield ports
    servers.close()


def scan_with(
    plane: ControlPlane, tmp_path: Path, name: str, ports: list[int], *extra: str
) -> dict[int, dict[str, Any]]:
    collector = Collector(tmp_path, name, [plane.url("grpc")], PASSWORD, zone="lab", extra_args=list(extra)).start()
    try:
        collector.wait_state("pending")
        plane.ctl(
            "collectors", "register", name, "--username", collector.username, "--password-stdin", "--enable",
            stdin=PASSWORD + "\n",
        )  # fmt: skip
        collector.wait_state("enabled")
        plane.ctl(
            "discoveries", "create", name, "--targets", HOST, "--ports", ",".join(map(str, ports)),
            "--collector", name, "--probes", "tcp,banners",
        )  # fmt: skip
        summary = json.loads(plane.ctl("discoveries", "run", name, "--wait", "--json").stdout)
        assert summary["state"] == "succeeded", summary
        device = json.loads(plane.ctl("devices", "show", HOST, "--json").stdout)
        return {port["port"]: port for port in device["services"]}
    finally:
        collector.stop()


def test_the_collector_names_greeting_servers_with_product_and_version(
    control_plane: ControlPlane, tmp_path: Path, greeters: dict[str, int]
) -> None:
    ports = scan_with(control_plane, tmp_path, "edge-recognise", list(greeters.values()))

    smtp, ftp = ports[greeters["smtp"]], ports[greeters["ftp"]]
    assert smtp["service"] == "smtp"
    assert smtp["details"]["service.product"] == "Postfix smtpd"
    assert "service.version" not in smtp["details"]
    assert (ftp["service"], ftp["details"]["service.product"], ftp["details"]["service.version"]) == (
        "ftp",
        "vsftpd",
        "3.0.3",
    )


def test_a_missing_fingerprint_file_is_one_warning_and_greetings_stay_unnamed(
    control_plane: ControlPlane, tmp_path: Path, greeters: dict[str, int]
) -> None:
    missing = tmp_path / "no-such-nmap-service-probes"
    ports = scan_with(control_plane, tmp_path, "edge-plain", [greeters["smtp"]], "--service-probes-file", str(missing))

    smtp = ports[greeters["smtp"]]
    assert smtp["service"] == ""
    assert smtp["banner"] == SMTP_GREETING.decode().strip()
    assert "service.product" not in smtp["details"]
    log = tmp_path / "collector-edge-plain.log"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["event"] == "service_probes_missing"]
    assert len(warnings) == 1 and warnings[0]["path"] == str(missing)
    (finished,) = [line for line in lines if line["event"] == "discovery_finished"]
    assert finished["service_recognition"] is False
