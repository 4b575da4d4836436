"""`outpostctl credentials ...`: the SNMP and SSH credentials discoveries log in with.

The registry stores the secrets encrypted and hands them only to the collector running a
job, sealed to its key; nothing ever shows them again, `list` included. Secrets are read
from files or stdin, never from flags (see `secret_input`), and every flag is checked
against `--type` before anything is read, so a mistake neither consumes stdin nor prompts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TextIO

import typer

from outpostctl import listing, output, secret_input
from outpostctl.endpoints import endpoints_of
from outpostctl.errors import CommandError
from outpostctl.options import JsonFlag, Yes, confirm_removal
from outpostctl.registry_client import RegistryClient, Secret, SnmpV2cSecret, SnmpV3Secret, SshSecret
from outpostctl.secret_input import SecretSource

app = typer.Typer(help="Discovery credentials (SNMP, SSH): add, list, remove.", no_args_is_help=True)

# RFC 3414 (SNMPv3 USM): authentication and privacy passwords have at least 8 characters.
MIN_SNMP_V3_KEY_LENGTH = 8


class CredentialType(enum.StrEnum):
    snmp_v2c = "snmp-v2c"
    snmp_v3 = "snmp-v3"
    ssh = "ssh"


class AuthProtocol(enum.StrEnum):
    SHA = "SHA"
    SHA256 = "SHA256"
    SHA512 = "SHA512"
    MD5 = "MD5"


class PrivProtocol(enum.StrEnum):
    AES = "AES"
    AES256 = "AES256"
    DES = "DES"


CredentialName = Annotated[str, typer.Argument(metavar="NAME", help="The credential's name, as discoveries name it.")]


def _file(flag: str, what: str) -> typer.models.OptionInfo:
    return typer.Option(flag, metavar="FILE", help=f"Read the {what} from this file ('-' = stdin).")


def _stdin(flag: str, what: str) -> typer.models.OptionInfo:
    return typer.Option(flag, help=f"Read the {what} from stdin (prompted for on a terminal).")


@dataclass(frozen=True)
class CredentialOptions:
    """What `credentials add` was given, before anything is read."""

    type: CredentialType
    username: str = ""
    community_file: Path | None = None
    community_stdin: bool = False
    auth_protocol: str = ""
    auth_key_file: Path | None = None
    auth_key_stdin: bool = False
    priv_protocol: str = ""
    priv_key_file: Path | None = None
    password_file: Path | None = None
    password_stdin: bool = False
    private_key_file: Path | None = None
    passphrase_file: Path | None = None

    @property
    def community(self) -> SecretSource:
        flags = ("--community-file", "--community-stdin")
        return SecretSource("community", *flags, self.community_stdin, self.community_file)

    @property
    def auth_key(self) -> SecretSource:
        return SecretSource("auth key", "--auth-key-file", "--auth-key-stdin", self.auth_key_stdin, self.auth_key_file)

    @property
    def priv_key(self) -> SecretSource:
        return SecretSource("privacy key", "--priv-key-file", path=self.priv_key_file)

    @property
    def password(self) -> SecretSource:
        return SecretSource("password", "--password-file", "--password-stdin", self.password_stdin, self.password_file)

    @property
    def private_key(self) -> SecretSource:
        return SecretSource("private key", "--private-key-file", path=self.private_key_file)

    @property
    def passphrase(self) -> SecretSource:
        return SecretSource("passphrase", "--passphrase-file", path=self.passphrase_file)

    @property
    def sources(self) -> list[SecretSource]:
        return [self.community, self.auth_key, self.priv_key, self.password, self.private_key, self.passphrase]


@app.command("add")
def add_credential(
    ctx: typer.Context,
    name: CredentialName,
    *,
    kind: Annotated[CredentialType, typer.Option("--type", help="What it logs in to.", case_sensitive=False)],
    username: Annotated[
        str, typer.Option("--username", metavar="USER", help="SNMPv3 or SSH user name (not secret).")
    ] = "",
    community_file: Annotated[Path | None, _file("--community-file", "SNMPv2c community")] = None,
    community_stdin: Annotated[bool, _stdin("--community-stdin", "SNMPv2c community")] = False,
    auth_protocol: Annotated[
        AuthProtocol | None,
        typer.Option("--auth-protocol", case_sensitive=False, help="SNMPv3 authentication protocol."),
    ] = None,
    auth_key_file: Annotated[Path | None, _file("--auth-key-file", "SNMPv3 authentication key")] = None,
    auth_key_stdin: Annotated[bool, _stdin("--auth-key-stdin", "SNMPv3 authentication key")] = False,
    priv_protocol: Annotated[
        PrivProtocol | None,
        typer.Option("--priv-protocol", case_sensitive=False, help="SNMPv3 privacy (encryption) protocol."),
    ] = None,
    priv_key_file: Annotated[Path | None, _file("--priv-key-file", "SNMPv3 privacy key")] = None,
    password_file: Annotated[Path | None, _file("--password-file", "SSH password")] = None,
    password_stdin: Annotated[bool, _stdin("--password-stdin", "SSH password")] = False,
    private_key_file: Annotated[Path | None, _file("--private-key-file", "SSH private key (PEM/OpenSSH)")] = None,
    passphrase_file: Annotated[Path | None, _file("--passphrase-file", "SSH private key's passphrase")] = None,
) -> None:
    """Add a credential. Secrets come only from files or stdin, and stdin carries one.

    snmp-v2c: --community-file F | --community-stdin.
    snmp-v3: --username U [--auth-protocol P (--auth-key-file F | --auth-key-stdin)
    [--priv-protocol P --priv-key-file F]].
    ssh: --username U (--password-file F | --password-stdin | --private-key-file F
    [--passphrase-file F]).
    """
    options = CredentialOptions(
        type=kind,
        username=username,
        community_file=community_file,
        community_stdin=community_stdin,
        auth_protocol=auth_protocol.value if auth_protocol else "",
        auth_key_file=auth_key_file,
        auth_key_stdin=auth_key_stdin,
        priv_protocol=priv_protocol.value if priv_protocol else "",
        priv_key_file=priv_key_file,
        password_file=password_file,
        password_stdin=password_stdin,
        private_key_file=private_key_file,
        passphrase_file=passphrase_file,
    )
    secret = build_secret(options)
    with RegistryClient(endpoints_of(ctx)) as registry:
        info = registry.create_credential(name, secret)
    who = f", user '{output.safe(info.username)}'" if info.username else ""
    output.print_line(f"credential '{output.safe(info.name or name)}' ({output.safe(info.type)}{who}) added")


@app.command("list")
def list_credentials(
    ctx: typer.Context, limit: listing.Limit = None, page_token: listing.PageToken = "", as_json: JsonFlag = False
) -> None:
    """List credentials by name, every page: names, types and user names; never a secret."""
    with RegistryClient(endpoints_of(ctx)) as registry:
        listing.print_rows(
            listing.Listing(registry.credentials_page, limit=limit, page_token=page_token),
            noun="credentials",
            headers=["NAME", "TYPE", "USERNAME", "CREATED", "CREATED BY"],
            row=lambda c: [c.name, c.type, c.username or "-", output.ago(c.created_at), c.created_by or "-"],
            as_json=as_json,
            empty="no credentials",
        )


@app.command("remove")
def remove_credential(ctx: typer.Context, name: CredentialName, yes: Yes = False) -> None:
    """Remove a credential; discoveries that name it can no longer log in with it."""
    confirm_removal(f"Remove credential '{output.safe(name)}'?", yes=yes)
    with RegistryClient(endpoints_of(ctx)) as registry:
        registry.delete_credential(name)
    output.print_line(f"credential '{output.safe(name)}' removed")


def build_secret(options: CredentialOptions, *, stdin: TextIO | None = None) -> Secret:
    """Check every flag against the type first, then read the secrets it needs.

    Usage mistakes raise `typer.BadParameter` (exit 2); unreadable files and keys that do
    not load raise `CommandError` (exit 1).
    """
    o = options
    _refuse_foreign_options(o)
    secret_input.check_sources(o.sources)
    if o.type is CredentialType.snmp_v2c:
        secret_input.require(o.community)
        return SnmpV2cSecret(community=secret_input.read_secret(o.community, stdin=stdin))
    _require_username(o)
    if o.type is CredentialType.snmp_v3:
        return _snmp_v3(o, stdin)
    return _ssh(o, stdin)


def _refuse_foreign_options(o: CredentialOptions) -> None:
    """Flags of another type are a usage error, never silently ignored."""
    owners = {
        CredentialType.snmp_v2c: [o.community],
        CredentialType.snmp_v3: [o.auth_key, o.priv_key],
        CredentialType.ssh: [o.password, o.private_key, o.passphrase],
    }
    for owner, sources in owners.items():
        if owner is not o.type:
            for source in sources:
                flag = source.stdin_flag if source.from_stdin else source.file_flag
                secret_input.refuse(source, f"{flag} is for --type {owner.value}, not {o.type.value}")
    if o.type is not CredentialType.snmp_v3:
        for flag, value in (("--auth-protocol", o.auth_protocol), ("--priv-protocol", o.priv_protocol)):
            if value:
                raise typer.BadParameter(f"{flag} is for --type snmp-v3, not {o.type.value}", param_hint=flag)
    if o.type is CredentialType.snmp_v2c and o.username:
        raise typer.BadParameter("snmp-v2c has no user name: the community is the credential", param_hint="--username")


def _require_username(o: CredentialOptions) -> None:
    if not o.username.strip():
        raise typer.BadParameter(f"--type {o.type.value} needs --username USER", param_hint="--username")


def _snmp_v3(o: CredentialOptions, stdin: TextIO | None) -> SnmpV3Secret:
    """noAuthNoPriv (user only), authNoPriv (+ auth) or authPriv (+ auth + privacy)."""
    if bool(o.auth_protocol) != o.auth_key.given:
        raise typer.BadParameter(
            "authentication needs both --auth-protocol and its key (--auth-key-file or --auth-key-stdin)",
            param_hint="--auth-protocol / --auth-key-file",
        )
    if bool(o.priv_protocol) != o.priv_key.given:
        raise typer.BadParameter(
            "privacy needs both --priv-protocol and --priv-key-file", param_hint="--priv-protocol / --priv-key-file"
        )
    if o.priv_protocol and not o.auth_protocol:
        raise typer.BadParameter(
            "SNMPv3 privacy needs authentication: add --auth-protocol and its key", param_hint="--priv-protocol"
        )
    auth_key = _snmp_v3_key(o.auth_key, stdin) if o.auth_key.given else ""
    priv_key = _snmp_v3_key(o.priv_key, stdin) if o.priv_key.given else ""
    return SnmpV3Secret(
        username=o.username.strip(),
        auth_protocol=o.auth_protocol,
        auth_key=auth_key,
        priv_protocol=o.priv_protocol,
        priv_key=priv_key,
    )


def _snmp_v3_key(source: SecretSource, stdin: TextIO | None) -> str:
    key = secret_input.read_secret(source, stdin=stdin)
    if len(key) < MIN_SNMP_V3_KEY_LENGTH:
        raise typer.BadParameter(
            f"the {source.label} is shorter than {MIN_SNMP_V3_KEY_LENGTH} characters, which SNMPv3 refuses",
            param_hint=source.flags,
        )
    return key


def _ssh(o: CredentialOptions, stdin: TextIO | None) -> SshSecret:
    """A password, or a private key with an optional passphrase: exactly one of the two."""
    if o.password.given and o.private_key.given:
        raise typer.BadParameter(
            "give a password or a private key, not both", param_hint="--password-file / --private-key-file"
        )
    if not o.password.given and not o.private_key.given:
        raise typer.BadParameter(
            "give a password (--password-file or --password-stdin) or a key (--private-key-file)",
            param_hint="--password-file / --password-stdin / --private-key-file",
        )
    username = o.username.strip()
    if o.password.given:
        secret_input.refuse(o.passphrase, "--passphrase-file goes with --private-key-file, not a password")
        return SshSecret(username=username, password=secret_input.read_secret(o.password, stdin=stdin))
    pem = secret_input.read_secret(o.private_key, whole=True, stdin=stdin)
    passphrase = secret_input.read_secret(o.passphrase, stdin=stdin) if o.passphrase.given else ""
    check_private_key(pem, passphrase, o.private_key)
    return SshSecret(username=username, private_key_pem=pem, passphrase=passphrase)


def check_private_key(pem: str, passphrase: str, source: SecretSource) -> None:
    """Refuse a key that the collectors' SSH library (asyncssh) cannot load with `passphrase`.

    The usual mistakes: the `.pub` half, an encrypted key without its passphrase, a wrong
    passphrase. An encrypted OpenSSH-format key needs bcrypt to open; where this machine
    lacks it the key is sent unchecked, and a collector that cannot open it fails the run.
    """
    import asyncssh  # only here: it takes a moment to import, and only SSH keys need it

    try:
        asyncssh.import_private_key(pem, passphrase or None)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        detail = str(exc)
        if "bcrypt" in detail.lower():
            return
        if "passphrase must be specified" in detail.lower():
            raise CommandError("the private key is encrypted: give its passphrase with --passphrase-file FILE") from exc
        if passphrase and ("decrypt" in detail.lower() or "passphrase" in detail.lower()):
            raise CommandError("the passphrase does not decrypt the private key") from exc
        where = "stdin" if source.reads_stdin else str(source.path)
        raise CommandError(
            f"{where} does not hold a private key that can be loaded ({detail}); a .pub file is the public half"
        ) from exc
