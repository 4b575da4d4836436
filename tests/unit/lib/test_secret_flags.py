"""A secret given as a file (`--database-url-file`, `OUTPOST_<SERVICE>_DATABASE_URL_FILE`).

systemd's `LoadCredential=` and Kubernetes Secret volumes hand a process files; the
services take the database URL (which carries the password) from one, through the same
parsing as `--database-url`. Errors name the file, never what is in it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.gateway import app as gateway_app
from services.registry import app as registry_app
from services.scheduler import app as scheduler_app
from tests.process_harness import BIN

URL = "postgresql+asyncpg://outpost:s3cret-pw@db.example:5432/outpost"

PARSERS: dict[str, Callable[..., Any]] = {
    "registry": registry_app.parse_config,
    "scheduler": scheduler_app.parse_config,
    "gateway": gateway_app.parse_args,
}


@pytest.mark.parametrize("service", sorted(PARSERS))
def test_the_database_url_comes_from_a_file(service: str, tmp_path: Path) -> None:
    secret = tmp_path / "database-url"
    secret.write_text(URL + "\n")
    config = PARSERS[service]([f"--database-url-file={secret}"])
    assert config.database_url == URL


@pytest.mark.parametrize("service", sorted(PARSERS))
def test_the_file_can_be_named_in_the_environment(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "database-url"
    secret.write_text(URL)
    monkeypatch.setenv(f"OUTPOST_{service.upper()}_DATABASE_URL_FILE", str(secret))
    assert PARSERS[service]([]).database_url == URL


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "No such file or directory"),
        ("", "empty"),
        ("  \n", "empty"),
        (URL + "\n" + URL, "more than one line"),
    ],
)
@pytest.mark.parametrize("service", sorted(PARSERS))
def test_an_unusable_file_ends_the_start_naming_the_file_not_its_content(
    service: str, content: str | None, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "database-url"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        PARSERS[service]([f"--database-url-file={secret}"])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"--database-url-file {secret}: {error}" in message
    assert "s3cret-pw" not in message


@pytest.mark.parametrize("service", sorted(PARSERS))
def test_the_url_and_the_file_together_are_refused(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "database-url"
    secret.write_text(URL)
    with pytest.raises(SystemExit):
        PARSERS[service]([f"--database-url={URL}", f"--database-url-file={secret}"])
    assert "give --database-url or --database-url-file, not both" in capsys.readouterr().err


def test_migrate_reads_the_same_file(tmp_path: Path) -> None:
    database = tmp_path / "from-file.db"
    secret = tmp_path / "database-url"
    secret.write_text(f"sqlite+aiosqlite:///{database}\n")
    # As an operator runs it, in its own process: migrate configures the process's logging.
    done = subprocess.run(
        [str(BIN / "outpost-scheduler"), "migrate", f"--database-url-file={secret}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert database.exists()
