"""First contact with `outpostctl`: its version, shell completion, and output a script can read.

Piped output is the case `devices list | awk ...` relies on: whatever width the terminal
beside the pipe has, every row is one line and no MAC address, fingerprint or history
entry is split.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from outpost.version import PROTOCOL_VERSION, VERSION
from outpostctl import output
from outpostctl.main import app

ROOT = Path(__file__).resolve().parents[3]
FINGERPRINT = "SHA256:" + "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5" * 2
MAC = "02:42:ac:11:00:02"
HISTORY = "ports 22/tcp ssh OpenSSH 9.6p1 Ubuntu 3ubuntu13.5, 443/tcp https nginx 1.24.0 (Ubuntu) " * 3


def _outpostctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(str(ROOT / part) for part in ("libs", "cli", "."))
    return subprocess.run(
        [sys.executable, "-m", "outpostctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        check=False,
    )


def test_version_prints_the_release_and_the_agent_protocol() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"outpostctl {VERSION} (agent protocol {PROTOCOL_VERSION})\n"


def test_version_needs_no_control_plane_and_no_command() -> None:
    result = _outpostctl("--registry", "127.0.0.1:9", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"outpostctl {VERSION} ")


def test_show_completion_prints_a_bash_script() -> None:
    # Typer detects the shell from the parent process; this switch lets the test name it.
    result = _outpostctl("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _outpostctl_completion outpostctl" in result.stdout
    assert "_OUTPOSTCTL_COMPLETE=complete_bash" in result.stdout


def test_the_completion_script_completes_commands_and_subcommands() -> None:
    """What the installed script asks: the words so far in, the candidates out."""

    def complete(words: str, index: int) -> list[str]:
        env = {"_OUTPOSTCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        result = _outpostctl(env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("outpostctl dev", 1) == ["devices"]
    assert "list" in complete("outpostctl collectors l", 2)


def _render_piped(*renderables: object, terminal_width: str = "40") -> str:
    """Print as the commands do, into a pipe, beside a terminal of `terminal_width` columns."""
    pipe = io.StringIO()
    console = output._Stdout(highlight=False, file=pipe, _environ={"COLUMNS": terminal_width})
    for renderable in renderables:
        console.print(renderable)
    return pipe.getvalue()


def test_piped_tables_keep_every_row_on_one_line() -> None:
    rows = [[f"printer-{n}", MAC, FINGERPRINT, HISTORY] for n in range(3)]
    shown = _render_piped(output.table(["NAME", "MAC", "FINGERPRINT", "CHANGE"], rows, truncate=["FINGERPRINT"]))
    lines = shown.splitlines()
    assert len(lines) == 4, shown  # the header and one line per row
    for n, line in enumerate(lines[1:]):
        assert line.startswith(f"printer-{n} ")
        assert MAC in line and FINGERPRINT in line and HISTORY.strip() in line  # whole, not truncated


def test_piped_fields_keep_every_value_on_one_line() -> None:
    shown = _render_piped(output.fields([("fingerprint", FINGERPRINT), ("mac", MAC), ("last change", HISTORY)]))
    assert len(shown.splitlines()) == 3, shown
    assert FINGERPRINT in shown and HISTORY.strip() in shown


def test_a_terminal_still_gets_its_own_width() -> None:
    terminal = output._Stdout(file=io.StringIO(), force_terminal=True, _environ={"COLUMNS": "60"})
    assert terminal.width == 60
    piped = output._Stdout(file=io.StringIO(), _environ={"COLUMNS": "60"})
    assert piped.width == output.PIPED_WIDTH
    assert output._Stdout(file=io.StringIO(), width=200).width == 200  # an explicit width wins (tests)


def test_the_module_console_is_unbounded_when_not_a_terminal() -> None:
    runner = CliRunner()  # stdout is a buffer: what a pipe looks like to rich
    with runner.isolation():
        assert not output.stdout.is_terminal
        assert output.stdout.width == output.PIPED_WIDTH
