"""Discovery credentials in the real registry, on SQLite and PostgreSQL.

Encrypted at rest under the secret key file, shown to admins without their secret, sealed
only to an enabled collector's encryption key, and never written or logged in clear. Also
the collector's encryption public key: stored on first contact, bound like its identity key.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from outpost.agent.v1 import agent_pb2
from outpost.db import create_engine, ensure_schema, is_sqlite
from outpost.registry.v1 import registry_pb2
from outpost.sealing import HPKE_ALGORITHM, LEGACY_ALGORITHM, OPENS, SealedSecretError, open_sealed, public_key_bytes
from outpost.session import handshake
from services.registry.app import StartupError, build_server, parse_config
from services.registry.store.database import MIGRATIONS_DIR, SCHEMA
from tests.integration.test_registry_support import (
    ACCEPTED,
    CS,
    REFUSED,
    FakeCollector,
    R,
    RunningRegistry,
    register,
    running_registry,
)

CANARY = "canary-S3cret-5e1f0a9d"
"""Every secret field in these tests carries this; it must never appear in clear."""
CONTEXT = "job-run-0001"
EXECUTABLE = Path(sys.executable).parent / "outpost-registry"
CT = registry_pb2.CredentialType

# An OpenSSH key encrypted with bcrypt-pbkdf (ssh-keygen -t ed25519 -N pass1234): a throwaway.
OPENSSH_BCRYPT_KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABCpNjFQ/f
G1x5NC8pnYssvEAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIBwLMczPwsAc8dEJ
2Ej5TeDImkwIA3yjho5Q6WdehExHAAAAkMKoIrm8htP2KaY+MZye7j/fCr5M1Yx+a4c9bX
tBECQnI1+qY/fWlnA5LuKea+XyJ8PmzGNMIqKi06c+uvxvFSCWWhT/bLEwQTsw8ssQgylG
G2HllJjTSriBswoq78HPFAI5dZt30rP7iQt22ri2p3NV02NoQcZoKGN0VL9F+4bRJw6yn/
Pu+IaymWj0SlD03g==
-----END OPENSSH PRIVATE KEY-----
"""


def openssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


def encrypted_pkcs8_key(passphrase: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase.encode())).decode()


def sec1_key() -> str:
    key = ec.generate_private_key(ec.SECP384R1())
    return key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode()


def snmp_v2c(name: str = "lab-v2c", community: str = CANARY) -> agent_pb2.Credential:
    return agent_pb2.Credential(name=name, snmp_v2c=agent_pb2.SnmpV2c(community=community))


def snmp_v3(name: str = "core-v3", **fields: str) -> agent_pb2.Credential:
    values = {
        "username": "monitor",
        "auth_protocol": "SHA256",
        "auth_key": CANARY + "-auth",
        "priv_protocol": "AES256",
        "priv_key": CANARY + "-priv",
    } | fields
    return agent_pb2.Credential(name=name, snmp_v3=agent_pb2.SnmpV3(**values))


def ssh(name: str = "core-ssh", **fields: str) -> agent_pb2.Credential:
    values = {"username": "netops", "password": CANARY + "-password"} | fields
    return agent_pb2.Credential(name=name, ssh=agent_pb2.SshLogin(**values))


class SealingCollector(FakeCollector):
    """A FakeCollector that also announces an X25519 encryption key (None: announces none)."""

    def __init__(
        self,
        name: str,
        *,
        with_encryption_key: bool = True,
        sealing_algorithms: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        self.encryption_key: x25519.X25519PrivateKey | None = (
            x25519.X25519PrivateKey.generate() if with_encryption_key else None
        )
        self.sealing_algorithms = list(sealing_algorithms)
        """What its hello lists; empty (the default) is a collector older than HPKE (ADR 0020)."""

    def hello(self) -> agent_pb2.Hello:
        hello = super().hello()
        if self.encryption_key is not None:
            hello.encryption_public_key = public_key_bytes(self.encryption_key)
        hello.sealing_algorithms.extend(self.sealing_algorithms)
        return hello

    def open(self, sealed: agent_pb2.SealedSecret, context: str = CONTEXT) -> agent_pb2.CredentialSet:
        assert self.encryption_key is not None
        return agent_pb2.CredentialSet.FromString(open_sealed(self.encryption_key, sealed, context))


async def create(registry: RunningRegistry, credential: agent_pb2.Credential) -> registry_pb2.CredentialInfo:
    response = await registry.stub.CreateCredential(registry_pb2.CreateCredentialRequest(credential=credential))
    info: registry_pb2.CredentialInfo = response.credential
    return info


async def seal(registry: RunningRegistry, instance_uid: str, *names: str) -> agent_pb2.SealedSecret:
    response = await registry.stub.SealCredentials(
        registry_pb2.SealCredentialsRequest(collector_instance_uid=instance_uid, names=list(names), context=CONTEXT)
    )
    sealed: agent_pb2.SealedSecret = response.sealed
    return sealed


async def enabled_collector(registry: RunningRegistry, name: str = "edge-7", **kwargs: Any) -> SealingCollector:
    collector = SealingCollector(name, **kwargs)
    response = await collector.authenticate(registry)
    assert response.decision == ACCEPTED, response.message
    await register(registry, name, enable=True)
    return collector


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value


async def every_stored_value(database_url: str) -> list[tuple[str, str, Any]]:
    """(table, column, value) for every column of every row of every registry table."""
    engine = create_engine(database_url, SCHEMA)
    found: list[tuple[str, str, Any]] = []
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            for table in tables:
                result = await conn.execute(sa.text(f'SELECT * FROM "{table}"'))
                for row in result.mappings():
                    found += [(table, column, value) for column, value in row.items()]
    finally:
        await engine.dispose()
    return found


def key_file(tmp_path: Path, name: str = "registry-secret.key") -> Path:
    return tmp_path / name


# --- create, list, delete --------------------------------------------------------------------
async def test_each_kind_is_created_and_listed_without_its_secret(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        before = datetime.now(UTC) - timedelta(seconds=1)
        created = [
            await create(registry, snmp_v2c()),
            await create(registry, snmp_v3()),
            await create(registry, ssh(private_key_pem=openssh_key())),
        ]

        listed = (await registry.stub.ListCredentials(registry_pb2.ListCredentialsRequest())).credentials

        assert [(c.name, c.type, c.username) for c in listed] == [
            ("core-ssh", CT.CREDENTIAL_TYPE_SSH, "netops"),
            ("core-v3", CT.CREDENTIAL_TYPE_SNMP_V3, "monitor"),
            ("lab-v2c", CT.CREDENTIAL_TYPE_SNMP_V2C, ""),
        ]
        assert {c.created_by for c in listed} == {"alice"}
        assert all(c.created_at.ToDatetime(UTC) >= before for c in listed)
        assert sorted(created, key=lambda c: c.name) == list(listed)
        assert CANARY not in str(listed) + str(created)


async def test_a_duplicate_name_is_refused_and_the_first_credential_stays(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c("lab", community="first-community"))

        failed = await rpc_error(create(registry, ssh("lab")))

        assert failed.code() == grpc.StatusCode.ALREADY_EXISTS
        assert failed.details() == "a credential named 'lab' already exists; delete it first or choose another name"
        opened = collector.open(await seal(registry, collector.instance_uid, "lab"))
        assert opened.credentials[0].snmp_v2c.community == "first-community"


async def test_a_deleted_credential_is_gone_and_deleting_it_again_is_not_found(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        await create(registry, snmp_v2c("lab"))
        await create(registry, snmp_v2c("other"))

        await registry.stub.DeleteCredential(registry_pb2.DeleteCredentialRequest(name="lab"))
        listed = (await registry.stub.ListCredentials(registry_pb2.ListCredentialsRequest())).credentials
        failed = await rpc_error(registry.stub.DeleteCredential(registry_pb2.DeleteCredentialRequest(name="lab")))

        assert [c.name for c in listed] == ["other"]
        assert failed.code() == grpc.StatusCode.NOT_FOUND
        assert failed.details() == "no credential named 'lab'; `outpostctl credentials list` shows those stored"
        await create(registry, ssh("lab"))  # the name is free again


INVALID: list[tuple[agent_pb2.Credential, str]] = [
    (agent_pb2.Credential(name="no-kind"), "credential has no secret: set one of snmp_v2c, snmp_v3 or ssh"),
    (snmp_v2c(name="  "), "a credential name is required"),
    (snmp_v2c(name="x" * 257), "the name is longer than 256 characters"),
    (snmp_v2c(name="bad\nname"), "the name contains control characters"),
    (snmp_v2c(community=""), "snmp_v2c.community is required"),
    (snmp_v2c(community="c" * 1025), "snmp_v2c.community is longer than 1024 characters"),
    (snmp_v3(username=""), "snmp_v3.username is required"),
    (snmp_v3(username="u" * 33), "snmp_v3.username is longer than 32 characters"),
    (snmp_v3(auth_protocol="SHA3"), "snmp_v3.auth_protocol must be one of MD5, SHA, SHA224, SHA256, SHA384, SHA512"),
    (snmp_v3(priv_protocol="BLOWFISH"), "snmp_v3.priv_protocol must be one of DES, 3DES, AES, AES192, AES256"),
    (snmp_v3(auth_key="short"), "snmp_v3.auth_key must be at least 8 characters with SHA256"),
    (snmp_v3(priv_key="1234567"), "snmp_v3.priv_key must be at least 8 characters with AES256"),
    (
        snmp_v3(auth_protocol="", auth_key=CANARY, priv_protocol="", priv_key=""),
        "snmp_v3.auth_key is set but auth_protocol is empty; set both or neither",
    ),
    (
        snmp_v3(auth_protocol="", auth_key=""),
        "snmp_v3.priv_protocol needs an auth_protocol too (SNMPv3 has no privacy without authentication)",
    ),
    (ssh(username=""), "ssh.username is required"),
    (ssh(password=""), "ssh needs a password or a private_key_pem (or both)"),
    (ssh(passphrase=CANARY), "ssh.passphrase is set but there is no private_key_pem to decrypt"),
    (ssh(private_key_pem="-----BEGIN PRIVATE KEY-----\nnot a key\n"), "is not a private key in OpenSSH or PEM"),
    (ssh(private_key_pem=f"{CANARY}"), "ssh.private_key_pem is not a private key in OpenSSH or PEM format"),
    (ssh(private_key_pem=encrypted_pkcs8_key(CANARY)), "ssh.private_key_pem is encrypted: give its passphrase"),
    (
        ssh(private_key_pem=encrypted_pkcs8_key(CANARY), passphrase="wrong-passphrase"),
        "ssh.private_key_pem does not decrypt with the given passphrase",
    ),
    (
        ssh(private_key_pem=openssh_key(), passphrase=CANARY),
        "ssh.passphrase is set but the private key is not encrypted; leave it empty",
    ),
    (
        ssh(
            private_key_pem=x25519.X25519PrivateKey.generate()
            .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            .decode()
        ),
        "ssh.private_key_pem holds a X25519PrivateKey, which SSH cannot log in with",
    ),
]


async def test_invalid_credentials_are_refused_with_a_message_naming_the_field_never_the_secret(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        with capture_logs() as logs:
            for credential, expected in INVALID:
                failed = await rpc_error(create(registry, credential))
                assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT, (credential.name, failed.details())
                assert expected in failed.details(), (expected, failed.details())
                assert CANARY not in failed.details()
        listed = (await registry.stub.ListCredentials(registry_pb2.ListCredentialsRequest())).credentials
        assert list(listed) == []
        assert CANARY not in repr(logs)


async def test_accepted_forms_are_normalised_and_delivered_as_written(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        pkcs8, sec1 = encrypted_pkcs8_key(CANARY), sec1_key()
        await create(registry, snmp_v3("v3-aliases", auth_protocol="sha1", priv_protocol=" aes128 "))
        await create(registry, snmp_v3("v3-auth-only", priv_protocol="", priv_key=""))
        await create(registry, snmp_v3("v3-none", auth_protocol="", auth_key="", priv_protocol="", priv_key=""))
        await create(registry, ssh("ssh-pkcs8", password="", private_key_pem=pkcs8, passphrase=CANARY))
        await create(registry, ssh("ssh-sec1-and-password", private_key_pem=sec1))

        names = ["v3-aliases", "v3-auth-only", "v3-none", "ssh-pkcs8", "ssh-sec1-and-password"]
        opened = collector.open(await seal(registry, collector.instance_uid, *names))

        by_name = {c.name: c for c in opened.credentials}
        assert [c.name for c in opened.credentials] == names
        aliases = by_name["v3-aliases"].snmp_v3
        assert (aliases.auth_protocol, aliases.priv_protocol) == ("SHA", "AES")
        assert by_name["v3-auth-only"].snmp_v3.auth_key == CANARY + "-auth"
        assert by_name["v3-none"].snmp_v3 == agent_pb2.SnmpV3(username="monitor")
        assert by_name["ssh-pkcs8"].ssh == agent_pb2.SshLogin(
            username="netops", private_key_pem=pkcs8, passphrase=CANARY
        )
        assert by_name["ssh-sec1-and-password"].ssh.private_key_pem == sec1
        assert by_name["ssh-sec1-and-password"].ssh.password == CANARY + "-password"


async def test_an_encrypted_openssh_key_is_refused_with_the_conversion_unless_bcrypt_can_open_it(
    database_url: str, tmp_path: Path
) -> None:
    credential = ssh(private_key_pem=OPENSSH_BCRYPT_KEY, passphrase="pass1234", password="")
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        if importlib.util.find_spec("bcrypt") is not None:  # cryptography uses it when installed
            assert (await create(registry, credential)).username == "netops"
            return
        failed = await rpc_error(create(registry, credential))
    assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.details() == (
        "credential 'core-ssh' refused: ssh.private_key_pem is an encrypted OpenSSH key, which needs bcrypt; "
        "convert it with `ssh-keygen -p -m PKCS8 -f KEY` or store it unencrypted"
    )


# --- secrecy --------------------------------------------------------------------------------
async def test_a_canary_secret_is_never_stored_nor_logged_in_clear(database_url: str, tmp_path: Path) -> None:
    private_key = openssh_key()
    key_body = private_key.splitlines()[2]  # a line of the key's base64, not the armour
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        with capture_logs() as logs:
            collector = await enabled_collector(registry)
            await create(registry, snmp_v2c())
            await create(registry, snmp_v3())
            await create(registry, ssh(private_key_pem=private_key, password=CANARY))
            sealed = await seal(registry, collector.instance_uid, "lab-v2c", "core-v3", "core-ssh")
            await rpc_error(create(registry, snmp_v2c()))  # a refusal logs nothing secret either
            listed = await registry.stub.ListCredentials(registry_pb2.ListCredentialsRequest())
        assert len(collector.open(sealed).credentials) == 3

    stored = await every_stored_value(database_url)
    credential_columns = {(table, column) for table, column, _ in stored if table == "credentials"}
    assert {("credentials", "secret"), ("credentials", "nonce"), ("credentials", "key_id")} <= credential_columns
    for table, column, value in stored:
        raw = (
            value.encode() if isinstance(value, str) else bytes(value) if isinstance(value, bytes | memoryview) else b""
        )
        for needle in (CANARY, key_body):
            assert needle.encode() not in raw, f"{needle[:12]}... in clear in {table}.{column}"
    if is_sqlite(database_url):  # the files themselves, WAL included
        db_file = Path(database_url.split("///", 1)[1])
        for path in db_file.parent.glob(db_file.name + "*"):
            assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in repr(logs) and key_body not in repr(logs)
    assert CANARY not in str(listed)
    events = [entry["event"] for entry in logs]
    assert events.count("credential_created") == 3
    assert "credentials_sealed" in events
    sealed_line = next(e for e in logs if e["event"] == "credentials_sealed")
    assert sealed_line["credentials"] == ["lab-v2c", "core-v3", "core-ssh"]
    assert sealed_line["types"] == ["snmp_v2c", "snmp_v3", "ssh"]
    assert sealed_line["context"] == CONTEXT


# --- sealing --------------------------------------------------------------------------------
async def test_credentials_sealed_for_an_enabled_collector_open_only_with_its_key_and_context(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c())
        await create(registry, ssh())
        counted = REGISTRY.get_sample_value("outpost_registry_credentials_sealed_total") or 0.0

        sealed = await seal(registry, collector.instance_uid, "core-ssh", "lab-v2c", "core-ssh")

        assert sealed.context == CONTEXT
        assert CANARY.encode() not in sealed.SerializeToString()
        assert list(collector.open(sealed).credentials) == [ssh(), snmp_v2c()]  # asked order, once each
        assert REGISTRY.get_sample_value("outpost_registry_credentials_sealed_total") == counted + 2
        with pytest.raises(SealedSecretError):
            open_sealed(x25519.X25519PrivateKey.generate(), sealed, CONTEXT)
        with pytest.raises(SealedSecretError):
            collector.open(sealed, context="job-run-0002")


async def test_hpke_is_sealed_only_to_a_collector_whose_hello_lists_it(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        current = await enabled_collector(registry, "edge-new", sealing_algorithms=OPENS)
        older = await enabled_collector(registry, "edge-old")  # lists nothing: predates HPKE
        await create(registry, snmp_v2c())

        with capture_logs() as logs:
            to_current = await seal(registry, current.instance_uid, "lab-v2c")
            to_older = await seal(registry, older.instance_uid, "lab-v2c")

        assert to_current.algorithm == HPKE_ALGORITHM
        assert not to_current.nonce
        assert to_older.algorithm == LEGACY_ALGORITHM
        assert list(current.open(to_current).credentials) == list(older.open(to_older).credentials) == [snmp_v2c()]
        sealed_lines = [e for e in logs if e["event"] == "credentials_sealed"]
        assert [(e["collector"], e["algorithm"]) for e in sealed_lines] == [
            ("edge-new", HPKE_ALGORITHM),
            ("edge-old", LEGACY_ALGORITHM),
        ]
        for sealed in (to_current, to_older):  # the caller (a gateway) holds no key that opens it
            with pytest.raises(SealedSecretError, match="does not open"):
                open_sealed(x25519.X25519PrivateKey.generate(), sealed, CONTEXT)


async def test_the_algorithm_follows_the_collectors_last_accepted_hello(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry, sealing_algorithms=OPENS)
        await create(registry, snmp_v2c())
        assert (await seal(registry, collector.instance_uid, "lab-v2c")).algorithm == HPKE_ALGORITHM

        collector.sealing_algorithms = []  # rolled back to a version before HPKE
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        rolled_back = await seal(registry, collector.instance_uid, "lab-v2c")
        assert rolled_back.algorithm == LEGACY_ALGORITHM
        assert list(collector.open(rolled_back).credentials) == [snmp_v2c()]

        collector.sealing_algorithms = [LEGACY_ALGORITHM, HPKE_ALGORITHM]  # upgraded again
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        assert (await seal(registry, collector.instance_uid, "lab-v2c")).algorithm == HPKE_ALGORITHM


async def test_a_hello_listing_too_many_sealing_algorithms_is_refused_and_nothing_stored(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = SealingCollector("edge-9", sealing_algorithms=[f"alg-{i}" for i in range(9)])

        response = await collector.authenticate(registry)

        assert response.decision == REFUSED
        assert response.message == (
            "collector 'edge-9' listed 9 sealing algorithms; at most 8 ids of 1 to 64 characters are accepted"
        )
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert "edge-9" not in [c.name for c in listed.collectors]


async def test_pending_disabled_and_unknown_collectors_get_no_credentials(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        await create(registry, snmp_v2c())
        collector = SealingCollector("edge-7")
        assert (await collector.authenticate(registry)).decision == ACCEPTED

        with capture_logs() as logs:
            pending = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))
            await register(registry, "edge-7", enable=False)
            disabled = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))
            unknown = await rpc_error(seal(registry, "no-such-uid", "lab-v2c"))

        assert pending.code() == disabled.code() == unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert pending.details() == (
            "collector 'edge-7' is pending and gets no credentials; "
            "register and enable it first with `outpostctl collectors register`"
        )
        assert disabled.details() == (
            "collector 'edge-7' is disabled and gets no credentials; "
            "enable it with `outpostctl collectors enable edge-7`"
        )
        assert "no collector with instance_uid 'no-such-uid'" in unknown.details()
        assert [e["event"] for e in logs].count("credentials_seal_refused") == 3

        await registry.stub.EnableCollector(registry_pb2.EnableCollectorRequest(name="edge-7"))
        opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))
        assert [c.name for c in opened.credentials] == ["lab-v2c"]

        await registry.stub.DisableCollector(registry_pb2.DisableCollectorRequest(name="edge-7"))
        again = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))
        assert again.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_collector_without_an_encryption_key_gets_an_actionable_refusal(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        await create(registry, snmp_v2c())
        collector = await enabled_collector(registry, with_encryption_key=False)

        failed = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))

        assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "has not announced an encryption key" in failed.details()
        assert "upgrade it to a version that sends one" in failed.details()


async def test_unknown_credential_names_are_not_found_naming_each(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c())

        failed = await rpc_error(seal(registry, collector.instance_uid, "missing-a", "lab-v2c", "missing-b"))

        assert failed.code() == grpc.StatusCode.NOT_FOUND
        assert failed.details() == (
            "no credentials named 'missing-a', 'missing-b'; `outpostctl credentials list` shows those stored"
        )


@pytest.mark.parametrize(
    ("names", "context", "message"),
    [
        ([], CONTEXT, "names must list at least one credential name"),
        (["lab-v2c", " "], CONTEXT, "names must list at least one credential name, and no empty one"),
        (["lab-v2c"], "", "context is required"),
    ],
)
async def test_a_seal_request_without_names_or_context_is_invalid(
    database_url: str, tmp_path: Path, names: list[str], context: str, message: str
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        request = registry_pb2.SealCredentialsRequest(
            collector_instance_uid=collector.instance_uid, names=names, context=context
        )
        failed = await rpc_error(registry.stub.SealCredentials(request))
        assert failed.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in failed.details()


# --- the secret key file --------------------------------------------------------------------
async def test_the_secret_key_file_is_created_0600_on_first_start_and_reused(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "registry-secret.key"
    with capture_logs() as logs:
        async with running_registry(database_url, secret_key_file=path) as registry:
            await create(registry, snmp_v2c())
    first = path.read_bytes()
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [e["event"] for e in logs].count("secret_key_created") == 1
    assert not list(path.parent.glob(".*.tmp"))

    with capture_logs() as logs:
        async with running_registry(database_url, secret_key_file=path) as registry:
            collector = await enabled_collector(registry)
            opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))
    assert path.read_bytes() == first
    assert opened.credentials[0].snmp_v2c.community == CANARY
    assert "secret_key_created" not in [e["event"] for e in logs]


async def test_a_registry_with_another_secret_key_names_the_problem_and_the_original_key_restores(
    database_url: str, tmp_path: Path
) -> None:
    original, other = key_file(tmp_path, "original.key"), key_file(tmp_path, "other.key")
    async with running_registry(database_url, secret_key_file=original) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c())

    with capture_logs() as logs:
        async with running_registry(database_url, secret_key_file=other) as registry:
            failed = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))

    assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failed.details().startswith("credential 'lab-v2c' was encrypted under secret key ")
    assert "start it with the original --secret-key-file" in failed.details()
    warning = next(e for e in logs if e["event"] == "credentials_under_other_secret_key")
    assert warning["credentials"] == 1
    assert "credential_undecryptable" in [e["event"] for e in logs]

    async with running_registry(database_url, secret_key_file=original) as registry:
        opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))
    assert opened.credentials[0].snmp_v2c.community == CANARY


async def test_a_ciphertext_moved_onto_another_row_does_not_decrypt(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c("victim", community="victim-community"))
        await create(registry, snmp_v2c("attacker", community="attacker-community"))
        engine = create_engine(database_url, SCHEMA)
        try:
            async with engine.begin() as conn:  # someone with database access swaps the secrets
                await conn.execute(
                    sa.text(
                        "UPDATE credentials SET secret = (SELECT secret FROM credentials WHERE name = 'attacker'), "
                        "nonce = (SELECT nonce FROM credentials WHERE name = 'attacker') WHERE name = 'victim'"
                    )
                )
        finally:
            await engine.dispose()

        failed = await rpc_error(seal(registry, collector.instance_uid, "victim"))

        assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "credential 'victim' does not decrypt" in failed.details()
        assert "altered or copied from another row" in failed.details()


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (b"short", 0o600, "must hold exactly 32 bytes, not 5"),
        (os.urandom(32) + b"\n", 0o600, "must hold exactly 32 bytes, not 33"),
        (os.urandom(32), 0o640, "is accessible to group or others (mode 0640); run: chmod 600"),
        (os.urandom(32), 0o604, "is accessible to group or others (mode 0604)"),
    ],
    ids=["too-short", "trailing-newline", "group-readable", "world-readable"],  # stable across xdist workers
)
async def test_a_malformed_or_exposed_secret_key_file_refuses_to_start(
    database_url: str, tmp_path: Path, content: bytes, mode: int, message: str
) -> None:
    path = key_file(tmp_path)
    path.write_bytes(content)
    path.chmod(mode)
    with pytest.raises(StartupError, match=r"secret key file .*registry-secret\.key " + re.escape(message)):
        async with running_registry(database_url, secret_key_file=path):
            pass
    assert path.read_bytes() == content  # never replaced


def test_the_process_refuses_a_malformed_secret_key_file_with_one_clear_line(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    result = subprocess.run(
        [
            str(EXECUTABLE),
            f"--data-dir={tmp_path / 'data'}",
            f"--secret-key-file={path}",
            "--listen=127.0.0.1:0",
            "--metrics-listen=",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"outpost-registry: secret key file {path} must hold exactly 32 bytes, not 9;")
    assert not (tmp_path / "data" / "registry.db").exists()  # refused before touching the database


def test_the_secret_key_file_defaults_to_the_data_dir_and_reads_its_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_config([f"--data-dir={tmp_path}"]).secret_key_file == tmp_path / "registry-secret.key"
    monkeypatch.setenv("OUTPOST_REGISTRY_SECRET_KEY_FILE", str(tmp_path / "from-env.key"))
    assert parse_config([f"--data-dir={tmp_path}"]).secret_key_file == tmp_path / "from-env.key"
    flagged = parse_config([f"--data-dir={tmp_path}", f"--secret-key-file={tmp_path / 'flag.key'}"])
    assert flagged.secret_key_file == tmp_path / "flag.key"


async def test_a_registry_started_from_its_flags_creates_the_default_key_file(tmp_path: Path) -> None:
    config = replace(parse_config([f"--data-dir={tmp_path}"]), listen="127.0.0.1:0", metrics_listen="")
    server, _ = await build_server(config)
    await server.stop(0)
    path = tmp_path / "registry-secret.key"
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- the collector's encryption key ----------------------------------------------------------
async def test_a_known_collector_presenting_another_encryption_key_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = await enabled_collector(registry)
        await create(registry, snmp_v2c())
        original = collector.encryption_key

        collector.encryption_key = x25519.X25519PrivateKey.generate()
        refused = await collector.authenticate(registry)

        assert refused.decision == REFUSED
        assert refused.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert refused.message.startswith(
            "encryption public key does not match the one on record for collector 'edge-7'"
        )
        collector.encryption_key = original
        opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))  # still sealed to the first
        assert [c.name for c in opened.credentials] == ["lab-v2c"]


async def test_a_collector_that_had_no_encryption_key_may_announce_one_once(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        await create(registry, snmp_v2c())
        collector = await enabled_collector(registry, with_encryption_key=False)  # an older collector version

        upgraded_key = x25519.X25519PrivateKey.generate()
        collector.encryption_key = upgraded_key
        assert (await collector.authenticate(registry)).decision == ACCEPTED  # the upgrade announces one
        opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))
        assert [c.name for c in opened.credentials] == ["lab-v2c"]

        collector.encryption_key = x25519.X25519PrivateKey.generate()
        assert (await collector.authenticate(registry)).decision == REFUSED  # but only once

        collector.encryption_key = None  # rolled back to the older version: accepted, the key stays
        assert (await collector.authenticate(registry)).decision == ACCEPTED
        collector.encryption_key = upgraded_key
        assert collector.open(await seal(registry, collector.instance_uid, "lab-v2c")).credentials


async def test_an_encryption_key_changed_in_transit_or_malformed_is_refused(database_url: str, tmp_path: Path) -> None:
    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        collector = SealingCollector("edge-7")
        request = collector.request(registry.server_instance)
        request.hello.encryption_public_key = public_key_bytes(x25519.X25519PrivateKey.generate())
        swapped = await registry.stub.AuthenticateCollector(request)

        short = SealingCollector("edge-8")
        short_request = short.request(registry.server_instance)
        short_request.hello.encryption_public_key = b"\x01" * 31
        short_request.signature = handshake.sign(
            short.key, short_request.hello, short_request.nonce, registry.server_instance
        )
        malformed = await registry.stub.AuthenticateCollector(short_request)

        assert swapped.decision == REFUSED
        assert swapped.message == "handshake proof did not verify"
        assert malformed.decision == REFUSED
        assert malformed.refusal == R.DISCONNECT_REASON_AUTHENTICATION_FAILED
        assert malformed.message == "collector 'edge-8' sent a 31-byte encryption public key; an X25519 key has 32"
        listed = await registry.stub.ListCollectors(registry_pb2.ListCollectorsRequest())
        assert list(listed.collectors) == []


async def test_collectors_stored_before_migration_0002_keep_working_and_may_add_a_key(
    database_url: str, tmp_path: Path
) -> None:
    # Its key-bound verifier (ADR 0013) converts to a service-password credential at 0015 (ADR 0025).
    collector = SealingCollector("edge-old", with_encryption_key=False)
    now = datetime.now(UTC)
    await _migrate_to(database_url, "0001")
    engine = create_engine(database_url, SCHEMA)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO collectors (instance_uid, name, zone, version, username, password_verifier, "
                    "public_key, fingerprint, state, state_reason, state_changed_by, remote_address, transport, "
                    "gateway_id, session_id, connected, first_seen, last_seen, registered_at, revision, last_error) "
                    "VALUES (:uid, 'edge-old', 'dmz', '0.9', :username, :verifier, :key, :fp, 'enabled', '', "
                    "'alice', '', '', '', '', false, :now, :now, :now, 0, '')"
                ),
                {
                    "uid": collector.instance_uid,
                    "username": collector.username,
                    "verifier": collector.verifier,
                    "key": collector.public_key,
                    "fp": collector.fingerprint,
                    "now": now.replace(tzinfo=None) if is_sqlite(database_url) else now,
                },
            )
    finally:
        await engine.dispose()

    async with running_registry(database_url, secret_key_file=key_file(tmp_path)) as registry:
        await create(registry, snmp_v2c())
        no_key = await rpc_error(seal(registry, collector.instance_uid, "lab-v2c"))
        collector.encryption_key = x25519.X25519PrivateKey.generate()
        response = await collector.authenticate(registry)

        assert no_key.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert response.decision == ACCEPTED, response.message
        assert response.state == CS.COLLECTOR_STATE_ENABLED
        opened = collector.open(await seal(registry, collector.instance_uid, "lab-v2c"))
        assert [c.name for c in opened.credentials] == ["lab-v2c"]


async def _migrate_to(database_url: str, revision: str) -> None:
    engine = create_engine(database_url, SCHEMA)
    try:
        await ensure_schema(engine, SCHEMA)
    finally:
        await engine.dispose()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = SCHEMA
    await asyncio.to_thread(command.upgrade, cfg, revision)
