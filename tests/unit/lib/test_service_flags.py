"""Every service's first contact: `--version`, and `--help` that shows the defaults.

A default that depends on other flags (`<data-dir>/access.key`) or is made at start (the
gateway's id) is described, never shown as one misleading value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from outpost import supervisor
from outpost.version import PROTOCOL_VERSION, VERSION
from services.collector import app as collector_app
from services.gateway import app as gateway_app
from services.registry import app as registry_app
from services.scheduler import app as scheduler_app

PARSERS: dict[str, Callable[[Sequence[str]], Any]] = {
    "outpost-registry": registry_app.parse_config,
    "outpost-scheduler": scheduler_app.parse_config,
    "outpost-gateway": gateway_app.parse_args,
    "outpost-collector": lambda argv: collector_app.build_parser().parse_args(argv),
    "outpost-run": supervisor.parse_args,
}

EXPECTED_IN_HELP = {
    "outpost-registry": [
        "default: 127.0.0.1:50051",
        "default: 127.0.0.1:9101",
        "default: .outpost",
        "default: 30",
        "default: <data-dir>/access.key",
        "default: <data-dir>/admin.token",
        "default: json",
    ],
    "outpost-scheduler": ["default: 127.0.0.1:50071", "default: 1", "default: info"],
    "outpost-gateway": [
        "default: 127.0.0.1:50061",
        "default: 127.0.0.1:6600",
        "default: 127.0.0.1:9102",
        "default: <hostname>-<6 random hex digits>",
        "default: True",
    ],
    "outpost-collector": ["default: 15.0", "(default 256MiB", "default: info"],
    "outpost-run": ["default: .outpost", "default: 120.0", "default: console"],
}


def _exit_output(name: str, flag: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        PARSERS[name]([flag])
    assert stopped.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_version_names_the_release_and_the_agent_protocol(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_output(name, "--version", capsys) == f"{name} {VERSION} (agent protocol {PROTOCOL_VERSION})"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_shows_the_defaults(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one flag a line, so a default is never split
    shown = _exit_output(name, "--help", capsys)
    for expected in EXPECTED_IN_HELP[name]:
        assert expected in shown, f"{name} --help lacks {expected!r}"
    assert "(default: None)" not in shown and "(default: [])" not in shown and "(default: False)" not in shown


def test_a_computed_gateway_id_is_described_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    shown = _exit_output("outpost-gateway", "--help", capsys)
    options = shown.split("options:", 1)[1]
    help_of_id = options.split("--gateway-id GATEWAY_ID", 1)[1].split("--tls-cert", 1)[0]
    assert "<hostname>" in help_of_id and help_of_id.count("default") == 1


def test_a_default_from_the_environment_is_the_one_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTPOST_SCHEDULER_LISTEN", "0.0.0.0:6000")
    assert "default: 0.0.0.0:6000" in _exit_output("outpost-scheduler", "--help", capsys)
