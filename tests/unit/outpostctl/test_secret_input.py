"""Secrets from a file or stdin: one source per secret, one secret per stdin."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import typer

from outpostctl.errors import CommandError
from outpostctl.secret_input import SecretSource, check_sources, read_secret, require


def community(*, from_stdin: bool = False, path: Path | None = None) -> SecretSource:
    return SecretSource("community", "--community-file", "--community-stdin", from_stdin, path)


def auth_key(*, from_stdin: bool = False, path: Path | None = None) -> SecretSource:
    return SecretSource("auth key", "--auth-key-file", "--auth-key-stdin", from_stdin, path)


def priv_key(path: Path | None = None) -> SecretSource:
    return SecretSource("privacy key", "--priv-key-file", path=path)


def test_one_secret_given_both_ways_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter, match="give the community once: --community-stdin or --community-file"):
        check_sources([community(from_stdin=True, path=Path("c.txt"))])


def test_two_secrets_from_stdin_are_refused() -> None:
    with pytest.raises(typer.BadParameter, match="stdin can carry only one secret") as refused:
        check_sources([auth_key(from_stdin=True), priv_key(Path("-"))])
    assert refused.value.param_hint == "--auth-key-stdin / --priv-key-file -"


@pytest.mark.parametrize("name", ["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"])
def test_a_file_flag_naming_stdin_counts_as_stdin(name: str) -> None:
    assert priv_key(Path(name)).reads_stdin
    with pytest.raises(typer.BadParameter, match="stdin can carry only one secret"):
        check_sources([auth_key(from_stdin=True), priv_key(Path(name))])


def test_one_secret_from_stdin_and_one_from_a_file_is_fine() -> None:
    check_sources([auth_key(from_stdin=True), priv_key(Path("priv.txt"))])
    check_sources([auth_key(path=Path("-")), priv_key(Path("priv.txt"))])


def test_a_missing_secret_names_its_flags() -> None:
    with pytest.raises(typer.BadParameter, match="give the community with --community-file or --community-stdin"):
        require(community())
    with pytest.raises(typer.BadParameter, match="give the privacy key with --priv-key-file"):
        require(priv_key())


def test_one_trailing_newline_is_removed_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "community"
    path.write_text(" pub lic \n\n")
    assert read_secret(community(path=path)) == " pub lic \n"
    path.write_text("public\r\n")
    assert read_secret(community(path=path)) == "public"


def test_a_whole_read_keeps_the_file_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    source = SecretSource("private key", "--private-key-file", path=path)
    assert read_secret(source, whole=True) == "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"


def test_stdin_is_read_when_it_is_not_a_terminal() -> None:
    assert read_secret(community(from_stdin=True), stdin=io.StringIO("public\n")) == "public"
    assert read_secret(priv_key(Path("-")), stdin=io.StringIO("privpass1\n")) == "privpass1"


@pytest.mark.parametrize("text", ["", "\n", "  \n"])
def test_an_empty_secret_is_refused(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="the community is empty"):
        read_secret(community(from_stdin=True), stdin=io.StringIO(text))


def test_an_unreadable_file_is_a_command_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(CommandError, match=f"cannot read the community file {missing}: No such file or directory"):
        read_secret(community(path=missing))


def test_a_binary_file_is_a_command_error(tmp_path: Path) -> None:
    path = tmp_path / "binary"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CommandError, match="is not UTF-8 text"):
        read_secret(community(path=path))
