"""The command tree parses: every --help works, and usage mistakes stop before any call.

The control plane addresses point at a closed port, so a command that got past its
checks would fail with exit 1 (unreachable), not the usage error's exit 2.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from outpostctl.main import app

CLOSED = ["--server", "127.0.0.1:9", "--timeout", "0.5"]


def _commands() -> list[list[str]]:
    paths: list[list[str]] = []
    for group in app.registered_groups:
        assert group.name and group.typer_instance
        paths.append([group.name])
        paths += [[group.name, str(command.name)] for command in group.typer_instance.registered_commands]
    return paths


def test_the_new_command_groups_are_there() -> None:
    groups = {path[0] for path in _commands()}
    assert {"credentials", "discoveries", "schedules", "jobs", "devices", "config"} <= groups


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


CRON = ["--minute", "0", "--hour", "2", "--day-of-month", "*", "--month", "*", "--day-of-week", "*"]
DISCOVERY = ["discoveries", "create", "d", "--targets", "10.0.0.0/24", "--ports", "22", "--zone", "z"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["discoveries", "create", "d", "--targets", "10.0.0.0/24", "--ports", "22"], "exactly one of --collector"),
        (
            [
                "discoveries",
                "create",
                "d",
                "--targets",
                "10.0.0.0/24",
                "--ports",
                "22",
                "--zone",
                "z",
                "--collector",
                "c",
            ],
            "exactly one of --collector",
        ),
        (
            ["discoveries", "create", "d", "--targets", "10.0.0.0/24", "--ports", "0-22", "--zone", "z"],
            "outside 1-65535",
        ),
        (
            [
                "discoveries",
                "create",
                "d",
                "--targets",
                "10.0.0.0/24",
                "--ports",
                "22",
                "--zone",
                "z",
                "--probes",
                "tcp",
                "--ssh-credential",
                "s",
            ],
            "add ssh to --probes",
        ),
        ([*DISCOVERY, "--snmp-port", "0"], "Invalid value for '--snmp-port'"),
        ([*DISCOVERY, "--ssh-port", "65536"], "Invalid value for '--ssh-port'"),
        ([*DISCOVERY, "--ssh-port", "ssh"], "Invalid value for '--ssh-port'"),
        (["schedules", "create", "s", "--discovery", "d", *CRON, "--timezone", "Nowhere/Land"], "unknown time zone"),
        (["schedules", "create", "s", "--discovery", "d", *CRON, "--missed", "later"], "later"),
        (["credentials", "add", "c", "--type", "snmp-v2c"], "give the community"),
        (
            [
                "credentials",
                "add",
                "c",
                "--type",
                "ssh",
                "--username",
                "u",
                "--password-stdin",
                "--private-key-file",
                "k",
            ],
            "not both",
        ),
        (["config", "set", "poll_minutes", "5"], "known: collector_check_minutes"),
        (["devices", "show", "not-an-ip"], "is not an IP address"),
        (["jobs", "list", "--state", "done"], "done"),
    ],
)
def test_usage_mistakes_exit_2_before_any_call(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*CLOSED, *args], input="")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize("flags", [["--snmp-port", "1"], ["--snmp-port", "1161", "--ssh-port", "65535"]])
def test_probe_ports_in_range_get_past_the_checks(flags: list[str]) -> None:
    result = CliRunner().invoke(app, [*CLOSED, *DISCOVERY, *flags], input="")
    assert result.exit_code == 1, result.output  # the closed port, not a usage error
    assert "cannot reach the scheduler" in str(result.exception)
