"""Discovery credentials: what an admin may store, and who may receive them.

A credential is a name and one secret of three kinds: an SNMPv2c community, an SNMPv3
user (USM), or an SSH login (password and/or private key). Only the *non-secret* part
(kind, user name) is ever shown back; the secret goes into the registry encrypted at
rest and out only sealed to the one enabled collector that runs the job.

`validate` is the whole admission rule. It normalises what has one spelling (SNMPv3
protocol names), checks what a collector would otherwise discover only mid-scan (a key
too short for SNMPv3's password-to-key, an SSH key that does not parse with its
passphrase) and refuses with a message naming the field, never echoing a secret.
The secret fields are `repr=False`, so a credential in a log line or a traceback shows
no secret either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_ssh_private_key

from outpost import errors
from services.registry.domain.collectors import Collector, CollectorState

MAX_NAME_CHARS = 256
MAX_USERNAME_CHARS = 256
MAX_SNMP_USERNAME_CHARS = 32
"""RFC 3414: usmUserName is SnmpAdminString (SIZE(1..32))."""
MAX_SECRET_CHARS = 1024
MAX_PRIVATE_KEY_CHARS = 16_384
MAX_CONTEXT_CHARS = 256
MIN_SNMP_KEY_CHARS = 8
"""RFC 3414 password-to-key needs a passphrase of at least 8 characters."""

AUTH_PROTOCOLS = ("MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")
PRIV_PROTOCOLS = ("DES", "3DES", "AES", "AES192", "AES256")
_PROTOCOL_ALIASES = {"SHA1": "SHA", "AES128": "AES"}

SSH_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
    dsa.DSAPrivateKey,
)
_OPENSSH_PEM = "-----BEGIN OPENSSH PRIVATE KEY-----"


class CredentialType(enum.StrEnum):
    SNMP_V2C = "snmp_v2c"
    SNMP_V3 = "snmp_v3"
    SSH = "ssh"


@dataclass(frozen=True)
class SnmpV2c:
    community: str = field(repr=False)


@dataclass(frozen=True)
class SnmpV3:
    username: str
    auth_protocol: str = ""
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = ""
    priv_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class SshLogin:
    username: str
    password: str = field(default="", repr=False)
    private_key_pem: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)


Secret = SnmpV2c | SnmpV3 | SshLogin


@dataclass(frozen=True)
class Credential:
    """A named secret, in clear: only between the admin's request and its encryption."""

    name: str
    secret: Secret

    @property
    def type(self) -> CredentialType:
        if isinstance(self.secret, SnmpV2c):
            return CredentialType.SNMP_V2C
        if isinstance(self.secret, SnmpV3):
            return CredentialType.SNMP_V3
        return CredentialType.SSH

    @property
    def username(self) -> str:
        """The non-secret identifying part; empty for SNMPv2c."""
        return "" if isinstance(self.secret, SnmpV2c) else self.secret.username


@dataclass(frozen=True)
class CredentialInfo:
    """What admins see of a credential: never the secret."""

    name: str
    type: CredentialType
    username: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class EncryptedCredential:
    """A stored credential: the secret as AES-256-GCM ciphertext under the key `key_id`."""

    info: CredentialInfo
    nonce: bytes
    ciphertext: bytes = field(repr=False)
    key_id: str


def validate(credential: Credential) -> Credential:
    """The credential as it will be stored (protocol names normalised), or InvalidArgument."""
    name = credential.name.strip()
    problem = _name_problem(name)
    secret = credential.secret
    if problem is None:
        if isinstance(secret, SnmpV2c):
            problem = _snmp_v2c_problem(secret)
        elif isinstance(secret, SnmpV3):
            secret = replace(
                secret,
                auth_protocol=_canonical(secret.auth_protocol),
                priv_protocol=_canonical(secret.priv_protocol),
            )
            problem = _snmp_v3_problem(secret)
        else:
            problem = _ssh_problem(secret)
    if problem is not None:
        raise errors.InvalidArgument(f"credential {errors.brief(name)} refused: {problem}" if name else problem)
    return Credential(name=name, secret=secret)


def require_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise errors.InvalidArgument("a credential name is required")
    if len(name) > MAX_NAME_CHARS:
        raise errors.InvalidArgument(f"credential name {errors.brief(name)} is longer than {MAX_NAME_CHARS} characters")
    return name


def already_exists(name: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(f"a credential named '{name}' already exists; delete it first or choose another name")


def not_found(names: list[str]) -> errors.NotFound:
    listed = ", ".join(f"'{n}'" for n in names)
    noun = "credential" if len(names) == 1 else "credentials"
    return errors.NotFound(f"no {noun} named {listed}; `outpostctl credentials list` shows those stored")


def seal_request(instance_uid: str, names: list[str], context: str) -> list[str]:
    """The distinct credential names asked for, in order, or InvalidArgument."""
    if not instance_uid.strip():
        raise errors.InvalidArgument("collector_instance_uid is required")
    if not context.strip():
        raise errors.InvalidArgument("context is required (the job run id the credentials are sealed for)")
    if len(context) > MAX_CONTEXT_CHARS:
        raise errors.InvalidArgument(f"context is longer than {MAX_CONTEXT_CHARS} characters")
    wanted = list(dict.fromkeys(n.strip() for n in names))
    if not wanted or "" in wanted:
        raise errors.InvalidArgument("names must list at least one credential name, and no empty one")
    return wanted


def require_sealable(collector: Collector | None, instance_uid: str) -> Collector:
    """Only an enabled collector with an encryption key ever receives secrets."""
    if collector is None:
        raise errors.FailedPrecondition(
            f"no collector with instance_uid '{instance_uid}'; it may have been removed, so it gets no credentials"
        )
    name = collector.name
    if collector.state is CollectorState.PENDING:
        raise errors.FailedPrecondition(
            f"collector '{name}' is pending and gets no credentials; "
            "register and enable it first with `outpostctl collectors register`"
        )
    if collector.state is not CollectorState.ENABLED:
        raise errors.FailedPrecondition(
            f"collector '{name}' is {collector.state} and gets no credentials; "
            f"enable it with `outpostctl collectors enable {name}`"
        )
    if not collector.encryption_public_key:
        raise errors.FailedPrecondition(
            f"collector '{name}' has not announced an encryption key, so credentials cannot be sealed to it; "
            "upgrade it to a version that sends one and let it reconnect"
        )
    return collector


def _name_problem(name: str) -> str | None:
    if not name:
        return "a credential name is required"
    if len(name) > MAX_NAME_CHARS:
        return f"the name is longer than {MAX_NAME_CHARS} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "the name contains control characters"
    return None


def _snmp_v2c_problem(secret: SnmpV2c) -> str | None:
    if not secret.community:
        return "snmp_v2c.community is required"
    return _too_long("snmp_v2c.community", secret.community, MAX_SECRET_CHARS)


def _canonical(protocol: str) -> str:
    upper = protocol.strip().upper()
    return _PROTOCOL_ALIASES.get(upper, upper)


def _snmp_v3_problem(secret: SnmpV3) -> str | None:
    if not secret.username.strip():
        return "snmp_v3.username is required"
    problem = _too_long("snmp_v3.username", secret.username, MAX_SNMP_USERNAME_CHARS)
    for prefix, protocol, key, allowed in (
        ("auth", secret.auth_protocol, secret.auth_key, AUTH_PROTOCOLS),
        ("priv", secret.priv_protocol, secret.priv_key, PRIV_PROTOCOLS),
    ):
        if problem is not None:
            return problem
        if protocol and protocol not in allowed:
            problem = f"snmp_v3.{prefix}_protocol must be one of {', '.join(allowed)} (or empty for none)"
        elif protocol and len(key) < MIN_SNMP_KEY_CHARS:
            problem = f"snmp_v3.{prefix}_key must be at least {MIN_SNMP_KEY_CHARS} characters with {protocol}"
        elif not protocol and key:
            problem = f"snmp_v3.{prefix}_key is set but {prefix}_protocol is empty; set both or neither"
        else:
            problem = _too_long(f"snmp_v3.{prefix}_key", key, MAX_SECRET_CHARS)
    if problem is None and secret.priv_protocol and not secret.auth_protocol:
        problem = "snmp_v3.priv_protocol needs an auth_protocol too (SNMPv3 has no privacy without authentication)"
    return problem


def _ssh_problem(secret: SshLogin) -> str | None:
    if not secret.username.strip():
        return "ssh.username is required"
    if not secret.password and not secret.private_key_pem:
        return "ssh needs a password or a private_key_pem (or both)"
    if secret.passphrase and not secret.private_key_pem:
        return "ssh.passphrase is set but there is no private_key_pem to decrypt"
    problem = (
        _too_long("ssh.username", secret.username, MAX_USERNAME_CHARS)
        or _too_long("ssh.password", secret.password, MAX_SECRET_CHARS)
        or _too_long("ssh.passphrase", secret.passphrase, MAX_SECRET_CHARS)
        or _too_long("ssh.private_key_pem", secret.private_key_pem, MAX_PRIVATE_KEY_CHARS)
    )
    if problem is None and secret.private_key_pem:
        problem = _private_key_problem(secret.private_key_pem, secret.passphrase)
    return problem


def _private_key_problem(pem: str, passphrase: str) -> str | None:
    """Parse the key as the collector's SSH client will: OpenSSH or PEM (PKCS#1/#8, SEC1).

    Decrypting an encrypted key runs its KDF, whose cost the key file chooses; callers
    run this in a worker thread.
    """
    data = pem.encode()
    password = passphrase.encode() or None
    openssh = _OPENSSH_PEM in pem
    key: object
    try:
        if openssh:
            key = load_ssh_private_key(data, password=password)
        else:
            key = load_pem_private_key(data, password=password)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        if password is None:
            return "ssh.private_key_pem is encrypted: give its passphrase"
        return "ssh.passphrase is set but the private key is not encrypted; leave it empty"
    except UnsupportedAlgorithm:
        if openssh:
            return (
                "ssh.private_key_pem is an encrypted OpenSSH key, which needs bcrypt; "
                "convert it with `ssh-keygen -p -m PKCS8 -f KEY` or store it unencrypted"
            )
        return "ssh.private_key_pem uses a key type or cipher that is not supported"
    except ValueError:
        if password is not None:
            return "ssh.private_key_pem does not decrypt with the given passphrase (or is not a private key)"
        return "ssh.private_key_pem is not a private key in OpenSSH or PEM format"
    if not isinstance(key, SSH_KEY_TYPES):
        return f"ssh.private_key_pem holds a {type(key).__name__}, which SSH cannot log in with"
    return None


def _too_long(what: str, value: str, limit: int) -> str | None:
    return f"{what} is longer than {limit} characters" if len(value) > limit else None
