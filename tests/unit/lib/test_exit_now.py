"""`exit_now`: the exit status `SystemExit` would give, and nothing written is lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import sys
from outpost.process import exit_now
print("last line, still in the buffer", end="")
sys.stderr.write("and on stderr")
exit_now({code!r})
raise AssertionError("exit_now returned")
"""


@pytest.mark.parametrize(("code", "status"), [(0, 0), (None, 0), (3, 3), ("outpost-x: a reason", 1)])
def test_exit_now_flushes_what_was_written_and_exits_with_the_status_systemexit_would_give(
    code: int | str | None, status: int
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(code=code)], check=False, capture_output=True, text=True
    )

    assert result.returncode == status
    assert result.stdout == "last line, still in the buffer"  # a pipe is block-buffered
    assert result.stderr.startswith("and on stderr")
    if isinstance(code, str):
        assert result.stderr.endswith(code + "\n")
    assert "exit_now returned" not in result.stderr
