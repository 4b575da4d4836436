"""`credentials add`: which flags each type takes, checked before any secret is read."""

from __future__ import annotations

import io
from pathlib import Path

import asyncssh
import pytest
import typer

from outpostctl.credentials import CredentialOptions, CredentialType, build_secret
from outpostctl.errors import CommandError
from outpostctl.registry_client import SnmpV2cSecret, SnmpV3Secret, SshSecret

V2C, V3, SSH = CredentialType.snmp_v2c, CredentialType.snmp_v3, CredentialType.ssh


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    contents = {
        "community": "public\n",
        "auth": "authpass123\n",
        "priv": "privpass123\n",
        "short": "1234567\n",
        "password": "hunter22\n",
        "passphrase": "open sesame\n",
        "id": key.export_private_key("openssh").decode(),
        "id.pub": key.export_public_key().decode(),
        "encrypted": key.export_private_key("pkcs8-pem", passphrase="open sesame").decode(),
    }
    paths = {}
    for name, text in contents.items():
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    return paths


def test_snmp_v2c_reads_the_community_from_stdin() -> None:
    secret = build_secret(CredentialOptions(V2C, community_stdin=True), stdin=io.StringIO("public\n"))
    assert secret == SnmpV2cSecret(community="public")


def test_snmp_v2c_needs_a_community() -> None:
    with pytest.raises(typer.BadParameter, match="give the community with --community-file or --community-stdin"):
        build_secret(CredentialOptions(V2C))


def test_snmp_v2c_has_no_user_name() -> None:
    with pytest.raises(typer.BadParameter, match="snmp-v2c has no user name"):
        build_secret(CredentialOptions(V2C, username="admin", community_stdin=True), stdin=io.StringIO("x"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            CredentialOptions(V2C, community_stdin=True, auth_key_stdin=True),
            "--auth-key-stdin is for --type snmp-v3, not snmp-v2c",
        ),
        (
            CredentialOptions(SSH, username="root", password_stdin=True, priv_key_file=Path("p")),
            "--priv-key-file is for --type snmp-v3, not ssh",
        ),
        (
            CredentialOptions(V3, username="u", password_file=Path("p")),
            "--password-file is for --type ssh, not snmp-v3",
        ),
        (
            CredentialOptions(SSH, username="u", community_file=Path("c")),
            "--community-file is for --type snmp-v2c, not ssh",
        ),
        (
            CredentialOptions(SSH, username="u", password_stdin=True, auth_protocol="SHA"),
            "--auth-protocol is for --type snmp-v3, not ssh",
        ),
    ],
)
def test_flags_of_another_type_are_refused_not_ignored(options: CredentialOptions, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        build_secret(options, stdin=io.StringIO("never read\n"))


def test_snmp_v3_auth_and_privacy(files: dict[str, Path]) -> None:
    options = CredentialOptions(
        V3,
        username="monitor",
        auth_protocol="SHA256",
        auth_key_file=files["auth"],
        priv_protocol="AES",
        priv_key_file=files["priv"],
    )
    assert build_secret(options) == SnmpV3Secret("monitor", "SHA256", "authpass123", "AES", "privpass123")


def test_snmp_v3_takes_one_key_from_stdin_and_the_other_from_a_file(files: dict[str, Path]) -> None:
    options = CredentialOptions(
        V3,
        username="monitor",
        auth_protocol="SHA",
        auth_key_stdin=True,
        priv_protocol="DES",
        priv_key_file=files["priv"],
    )
    secret = build_secret(options, stdin=io.StringIO("authpass123\n"))
    assert secret == SnmpV3Secret("monitor", "SHA", "authpass123", "DES", "privpass123")


def test_snmp_v3_refuses_both_keys_from_stdin_before_reading_it() -> None:
    stdin = io.StringIO("authpass123\nprivpass123\n")
    options = CredentialOptions(
        V3, username="monitor", auth_protocol="SHA", auth_key_stdin=True, priv_protocol="AES", priv_key_file=Path("-")
    )
    with pytest.raises(typer.BadParameter, match="stdin can carry only one secret"):
        build_secret(options, stdin=stdin)
    assert stdin.tell() == 0


def test_snmp_v3_with_a_user_name_only_is_no_auth_no_priv() -> None:
    assert build_secret(CredentialOptions(V3, username="monitor")) == SnmpV3Secret("monitor")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"username": ""}, "--type snmp-v3 needs --username USER"),
        ({"auth_protocol": ""}, "authentication needs both --auth-protocol and its key"),
        ({"auth_key_file": None}, "authentication needs both --auth-protocol and its key"),
        ({"priv_protocol": ""}, "privacy needs both --priv-protocol and --priv-key-file"),
        ({"auth_protocol": "", "auth_key_file": None}, "SNMPv3 privacy needs authentication"),
    ],
)
def test_snmp_v3_protocols_and_keys_go_together(
    files: dict[str, Path], changes: dict[str, object], message: str
) -> None:
    full = {
        "username": "monitor",
        "auth_protocol": "SHA",
        "auth_key_file": files["auth"],
        "priv_protocol": "AES",
        "priv_key_file": files["priv"],
    }
    options = CredentialOptions(V3, **{**full, **changes})  # type: ignore[arg-type]
    with pytest.raises(typer.BadParameter, match=message):
        build_secret(options)


def test_snmp_v3_keys_shorter_than_eight_characters_are_refused(files: dict[str, Path]) -> None:
    options = CredentialOptions(V3, username="monitor", auth_protocol="MD5", auth_key_file=files["short"])
    with pytest.raises(typer.BadParameter, match="the auth key is shorter than 8 characters"):
        build_secret(options)


def test_ssh_with_a_password(files: dict[str, Path]) -> None:
    options = CredentialOptions(SSH, username="root", password_file=files["password"])
    assert build_secret(options) == SshSecret("root", password="hunter22")


def test_ssh_with_a_private_key_keeps_the_key_whole(files: dict[str, Path]) -> None:
    secret = build_secret(CredentialOptions(SSH, username="root", private_key_file=files["id"]))
    assert secret == SshSecret("root", private_key_pem=files["id"].read_text())


def test_ssh_with_an_encrypted_key_and_its_passphrase(files: dict[str, Path]) -> None:
    options = CredentialOptions(
        SSH, username="root", private_key_file=files["encrypted"], passphrase_file=files["passphrase"]
    )
    secret = build_secret(options)
    assert isinstance(secret, SshSecret)
    assert secret.passphrase == "open sesame"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (CredentialOptions(SSH, username="root"), "give a password .* or a key"),
        (CredentialOptions(SSH, password_stdin=True), "--type ssh needs --username USER"),
        (CredentialOptions(SSH, username="r", password_stdin=True, private_key_file=Path("k")), "not both"),
        (
            CredentialOptions(SSH, username="r", password_stdin=True, passphrase_file=Path("p")),
            "goes with --private-key-file",
        ),
    ],
)
def test_ssh_takes_a_password_or_a_key(options: CredentialOptions, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        build_secret(options, stdin=io.StringIO("never read\n"))


@pytest.mark.parametrize(
    ("key", "passphrase", "message"),
    [
        ("id.pub", None, "does not hold a private key that can be loaded .* a .pub file is the public half"),
        ("encrypted", None, "the private key is encrypted: give its passphrase with --passphrase-file FILE"),
        ("encrypted", "password", "the passphrase does not decrypt the private key"),
    ],
)
def test_ssh_keys_that_would_not_load_are_refused(
    files: dict[str, Path], key: str, passphrase: str | None, message: str
) -> None:
    options = CredentialOptions(
        SSH, username="root", private_key_file=files[key], passphrase_file=files[passphrase] if passphrase else None
    )
    with pytest.raises(CommandError, match=message):
        build_secret(options)


def test_secrets_stay_out_of_repr() -> None:
    shown = repr([SnmpV2cSecret("c0mmunity"), SnmpV3Secret("u", "SHA", "authpass123", "AES", "privpass123")])
    shown += repr(SshSecret("root", password="hunter22", private_key_pem="PEM", passphrase="open sesame"))
    for secret in ("c0mmunity", "authpass123", "privpass123", "hunter22", "PEM", "open sesame"):
        assert secret not in shown
