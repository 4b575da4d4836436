"""Command line and environment -> Settings; a bad setting exits 2 with one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from outpost.access_key import AccessKey, write_access_key_file
from services.collector.app import load_recognizer, parse_settings
from services.collector.domain.server_url import parse_server_url
from tests.peers.process import wait_until

from .conftest import PASSWORD

ACCESS_KEY = AccessKey(key_id="ak_test", secret=bytes(range(32)))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OUTPOST_COLLECTOR_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("OUTPOST_ACCESS_KEY", raising=False)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    write_access_key_file(path.with_name("access.key"), ACCESS_KEY)
    return path


def base_args(password_file: Path, *extra: str, access_key_file: bool = True) -> list[str]:
    """Flags every collector needs; the access key from a file beside the password file."""
    key = ["--access-key-file", str(password_file.with_name("access.key"))] if access_key_file else []
    return [
        *key,
        "--server",
        "grpc://gw-1",
        "--name",
        "edge-7",
        "--username",
        "svc",
        "--password-file",
        str(password_file),
        *extra,
    ]


def exit_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        parse_settings(argv)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


def test_flags_give_settings_with_sensible_defaults(password_file: Path, tmp_path: Path) -> None:
    settings = parse_settings(base_args(password_file, "--server", "wss://gw-2", "--data-dir", str(tmp_path / "d")))
    assert settings.servers == (parse_server_url("grpc://gw-1"), parse_server_url("wss://gw-2"))
    assert (settings.name, settings.zone, settings.username) == ("edge-7", "default", "svc")
    assert settings.data_dir == tmp_path / "d"
    assert (settings.backoff_initial, settings.backoff_max, settings.handshake_timeout) == (0.5, 30.0, 15.0)
    assert settings.status_file is None
    assert settings.log_format == "json"
    assert (settings.spool_max_bytes, settings.spool_max_age) == (256 * 1024 * 1024, 7 * 86400.0)


@pytest.mark.parametrize(
    ("size", "age", "expected"),
    [
        ("1GB", "12h", (1_000_000_000, 43200.0)),
        ("64MiB", "90m", (64 * 1024 * 1024, 5400.0)),
        ("2097152", "3600", (2097152, 3600.0)),
        ("1.5 GiB", "2d", (1536 * 1024 * 1024, 172800.0)),
    ],
)
def test_spool_bounds_take_units_an_operator_writes(
    password_file: Path, size: str, age: str, expected: tuple[int, float]
) -> None:
    settings = parse_settings(base_args(password_file, "--spool-max-bytes", size, "--spool-max-age", age))
    assert (settings.spool_max_bytes, settings.spool_max_age) == expected


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("off", 0.0), ("90d", 90 * 86400.0), ("3600", 3600.0)])
def test_rotate_key_after_is_off_by_default_and_takes_a_duration(
    password_file: Path, value: str, seconds: float
) -> None:
    assert parse_settings(base_args(password_file)).rotate_key_after == 0.0
    assert parse_settings(base_args(password_file, "--rotate-key-after", value)).rotate_key_after == seconds


def test_spool_bounds_come_from_the_environment_too(monkeypatch: pytest.MonkeyPatch, password_file: Path) -> None:
    monkeypatch.setenv("OUTPOST_COLLECTOR_SPOOL_MAX_BYTES", "512MiB")
    monkeypatch.setenv("OUTPOST_COLLECTOR_SPOOL_MAX_AGE", "1w")
    settings = parse_settings(base_args(password_file))
    assert (settings.spool_max_bytes, settings.spool_max_age) == (512 * 1024 * 1024, 7 * 86400.0)


def test_the_password_file_is_read_without_its_newline_and_never_shown(password_file: Path) -> None:
    settings = parse_settings(base_args(password_file))
    assert settings.password == PASSWORD  # hashed, bound to the key, once the identity is loaded
    assert PASSWORD not in repr(settings)


def test_the_environment_fills_in_what_flags_leave_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTPOST_COLLECTOR_SERVERS", "grpc://gw-1, tcp://gw-2")
    monkeypatch.setenv("OUTPOST_COLLECTOR_NAME", "edge-env")
    monkeypatch.setenv("OUTPOST_COLLECTOR_ZONE", "dmz")
    monkeypatch.setenv("OUTPOST_COLLECTOR_USERNAME", "svc")
    monkeypatch.setenv("OUTPOST_COLLECTOR_PASSWORD", PASSWORD)
    monkeypatch.setenv("OUTPOST_COLLECTOR_BACKOFF_MAX", "5")
    monkeypatch.setenv("OUTPOST_ACCESS_KEY", ACCESS_KEY.encode())

    settings = parse_settings([])

    assert [str(s) for s in settings.servers] == ["grpc://gw-1:50061", "tcp://gw-2:6600"]
    assert (settings.name, settings.zone, settings.backoff_max) == ("edge-env", "dmz", 5.0)
    assert settings.password == PASSWORD
    assert "OUTPOST_COLLECTOR_PASSWORD" not in os.environ  # child processes never inherit it


def test_a_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch, password_file: Path) -> None:
    monkeypatch.setenv("OUTPOST_COLLECTOR_SERVERS", "grpc://from-env")
    monkeypatch.setenv("OUTPOST_COLLECTOR_ZONE", "from-env")
    settings = parse_settings(base_args(password_file, "--zone", "from-flag"))
    assert [s.host for s in settings.servers] == ["gw-1"]
    assert settings.zone == "from-flag"


def test_a_missing_password_exits_2_saying_where_to_put_it(capsys: pytest.CaptureFixture[str]) -> None:
    line = exit_line(capsys, ["--server", "grpc://gw-1", "--name", "e", "--username", "svc"])
    assert line == (
        "outpost-collector: error: no service password: give --password-file FILE or set OUTPOST_COLLECTOR_PASSWORD"
    )


@pytest.mark.parametrize("flag", [["--password", "hunter2"], ["--password=hunter2"]])
def test_a_password_flag_is_refused_without_echoing_the_password(
    capsys: pytest.CaptureFixture[str], password_file: Path, flag: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_settings([*base_args(password_file), *flag])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "--password-file FILE" in err


def test_abbreviated_flags_are_not_guessed(capsys: pytest.CaptureFixture[str], password_file: Path) -> None:
    line = exit_line(capsys, ["--server", "grpc://gw-1", "--name", "e", "--username", "u", "--password-f", "x"])
    assert "unrecognized arguments: --password-f" in line


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--server", "ftp://gw-1"], "unknown scheme 'ftp'"),
        (["--server", "tcp://gw-1/path"], "takes no path"),
        (["--backoff-initial", "5", "--backoff-max", "1"], "--backoff-max (1) is below --backoff-initial (5)"),
        (["--log-level", "chatty"], "invalid --log-level 'chatty'"),
        (["--ca-file", "/nonexistent/ca.pem"], "cannot use --ca-file /nonexistent/ca.pem"),
        (["--name", ""], "--name is required"),
        (["--name", "x" * 300], "--name is longer than 256 characters"),
        (["--spool-max-bytes", "lots"], "'lots' is not a size such as 268435456, 256MiB or 1GB"),
        (["--spool-max-bytes", "5PB"], "is not a size"),
        (["--spool-max-bytes", "1000"], "--spool-max-bytes (1000) is below the minimum of 1MiB"),
        (["--spool-max-age", "0"], "'0' must be more than 0 seconds"),
        (["--spool-max-age", "forever"], "is not seconds, or a duration such as 90m, 12h or 7d"),
    ],
)
def test_bad_settings_exit_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], password_file: Path, extra: list[str], says: str
) -> None:
    line = exit_line(capsys, [*base_args(password_file), *extra])
    assert line.startswith("outpost-collector: error: ")
    assert says in line


def test_no_server_at_all_exits_2(capsys: pytest.CaptureFixture[str], password_file: Path) -> None:
    line = exit_line(capsys, ["--name", "e", "--username", "svc", "--password-file", str(password_file)])
    assert "no gateway address" in line


def test_an_empty_or_unreadable_password_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in exit_line(capsys, base_args(empty))
    assert "cannot read --password-file" in exit_line(capsys, base_args(tmp_path / "missing"))


def test_a_ca_file_that_is_not_pem_exits_2(
    capsys: pytest.CaptureFixture[str], password_file: Path, tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    assert "is not a PEM CA bundle" in exit_line(capsys, [*base_args(password_file), "--ca-file", str(bogus)])


def test_service_recognition_reads_nmaps_file_at_intensity_7_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    defaults = parse_settings(base_args(password_file))
    assert (defaults.service_probes_file, defaults.service_intensity) == ("/usr/share/nmap/nmap-service-probes", 7)
    flags = parse_settings(base_args(password_file, "--service-probes-file", "/opt/p", "--service-intensity", "2"))
    assert (flags.service_probes_file, flags.service_intensity) == ("/opt/p", 2)
    monkeypatch.setenv("OUTPOST_COLLECTOR_SERVICE_PROBES_FILE", "/srv/probes")
    monkeypatch.setenv("OUTPOST_COLLECTOR_SERVICE_INTENSITY", "9")
    from_env = parse_settings(base_args(password_file))
    assert (from_env.service_probes_file, from_env.service_intensity) == ("/srv/probes", 9)


@pytest.mark.parametrize("intensity", ["10", "-1", "7.5", "\uff13", "high"])  # \uff13: a fullwidth 3
def test_an_intensity_outside_0_to_9_is_refused(
    capsys: pytest.CaptureFixture[str], password_file: Path, intensity: str
) -> None:
    line = exit_line(capsys, base_args(password_file, f"--service-intensity={intensity}"))
    assert "--service-intensity" in line and "0 to 9" in line


def test_scans_run_in_process_unless_workers_are_asked_for(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    assert parse_settings(base_args(password_file)).scan_workers == 1
    assert parse_settings(base_args(password_file, "--scan-workers", "3")).scan_workers == 3
    cores = len(os.sched_getaffinity(0))
    assert parse_settings(base_args(password_file, "--scan-workers", "auto")).scan_workers == cores
    monkeypatch.setenv("OUTPOST_COLLECTOR_SCAN_WORKERS", "2")
    assert parse_settings(base_args(password_file)).scan_workers == 2


@pytest.mark.parametrize("workers", ["0", "65", "-2", "many", ""])
def test_a_scan_worker_count_outside_1_to_64_or_auto_is_refused(
    capsys: pytest.CaptureFixture[str], password_file: Path, workers: str
) -> None:
    assert "--scan-workers" in exit_line(capsys, base_args(password_file, f"--scan-workers={workers}"))


def test_the_fingerprint_file_is_loaded_and_its_uncompilable_patterns_counted_once() -> None:
    sample = Path(__file__).parents[1] / "discovery" / "data" / "service-probes-sample"
    with capture_logs() as logs:
        recognizer = load_recognizer(str(sample), 5)
        wait_until(lambda: any(line["event"] == "service_probes_checked" for line in logs), "pattern check")
    assert recognizer is not None and recognizer.intensity == 5
    (loaded,) = [line for line in logs if line["event"] == "service_probes_loaded"]
    assert (loaded["probes"], loaded["patterns"]) == (4, 13)
    (checked,) = [line for line in logs if line["event"] == "service_probes_checked"]
    assert (checked["patterns"], checked["not_compiled"], len(checked["first_not_compiled"])) == (13, 2, 2)


def test_the_start_up_pattern_check_can_be_skipped_and_recognition_stays(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    assert parse_settings(base_args(password_file)).service_probes_check
    assert not parse_settings(base_args(password_file, "--skip-service-probes-check")).service_probes_check
    monkeypatch.setenv("OUTPOST_COLLECTOR_SKIP_SERVICE_PROBES_CHECK", "1")
    assert not parse_settings(base_args(password_file)).service_probes_check

    started: list[object] = []
    monkeypatch.setattr("services.collector.app.threading.Thread", lambda *a, **kw: started.append(kw))
    sample = Path(__file__).parents[1] / "discovery" / "data" / "service-probes-sample"
    with capture_logs() as logs:
        recognizer = load_recognizer(str(sample), 5, check=False)
    assert recognizer is not None and recognizer.intensity == 5
    assert [line["event"] for line in logs] == ["service_probes_loaded"]
    assert started == []


def test_a_missing_fingerprint_file_is_one_warning_and_no_recognizer(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert load_recognizer(str(tmp_path / "absent"), 7) is None
    assert [line["event"] for line in logs] == ["service_probes_missing"]


def test_a_malformed_fingerprint_file_stops_the_collector_at_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "probes"
    bad.write_text("match x m|a|\n")
    with pytest.raises(SystemExit) as exited:
        load_recognizer(str(bad), 7)
    assert exited.value.code == 2
    assert "--service-probes-file" in capsys.readouterr().err


def test_the_collector_lists_every_sealing_algorithm_it_opens_unless_told_legacy(
    password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_settings(base_args(password_file)).legacy_sealing is False
    assert parse_settings(base_args(password_file, "--legacy-sealing")).legacy_sealing is True
    monkeypatch.setenv("OUTPOST_COLLECTOR_LEGACY_SEALING", "1")
    assert parse_settings(base_args(password_file)).legacy_sealing is True


def test_the_access_key_comes_from_the_environment_and_leaves_it(
    password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTPOST_ACCESS_KEY", ACCESS_KEY.encode())
    settings = parse_settings(base_args(password_file, access_key_file=False))
    assert settings.access_key == ACCESS_KEY
    assert "OUTPOST_ACCESS_KEY" not in os.environ  # child processes never inherit it


def test_the_access_key_file_wins_and_may_carry_the_server_key_to_pin(password_file: Path, tmp_path: Path) -> None:
    pinned = AccessKey(key_id="ak_file", secret=bytes(32), server_public_key=bytes(range(32, 64)))
    write_access_key_file(tmp_path / "access.key", pinned)
    settings = parse_settings(base_args(password_file, "--access-key-file", str(tmp_path / "access.key")))
    assert settings.access_key == pinned


def test_a_collector_without_an_access_key_refuses_to_start(
    password_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line = exit_line(capsys, base_args(password_file, access_key_file=False))
    assert "no access key" in line and "--access-key-file" in line and "OUTPOST_ACCESS_KEY" in line


def test_a_malformed_access_key_file_exits_2_without_echoing_it(
    password_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "access.key"
    path.write_text("outpost-ak1.ak_x.not-a-secret\n")
    line = exit_line(capsys, base_args(password_file, "--access-key-file", str(path)))
    assert str(path) in line and "not-a-secret" not in line
