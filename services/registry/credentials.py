"""Discovery credentials: create, list, delete, and seal them to one enabled collector.

`Credentials` is what the gRPC servicer calls for the credential RPCs. A secret lives in
clear only for the length of one call:

- **Create**: validate (`domain.credentials`), encode as the agent protocol's
  `Credential` message, encrypt with AES-256-GCM under the registry's secret key
  (`store.secrets`) with (type, name) as associated data, store ciphertext + nonce +
  key id. The associated data means a ciphertext copied onto another row does not
  decrypt there.
- **Seal** (gateways, per job run): the collector must exist, be enabled and have an
  encryption key; every name must exist; then decrypt, gather a `CredentialSet`, and
  seal it to that collector's X25519 key for the given context (`outpost.sealing`):
  with HPKE (RFC 9180) when the collector's last signed hello listed it, with the legacy
  ECIES otherwise (ADR 0020). Only that collector can open it, and only as that job run.

The stored plaintext *is* the wire message on purpose: sealing re-encodes nothing, and
the collector reads exactly what the admin wrote. That makes this the one module outside
`api/` that touches protobuf. Logs and metrics name credentials and their types, never
a secret; `repr` of every object here that holds one hides it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from outpost import errors, sealing
from outpost.agent.v1 import agent_pb2
from services.registry import metrics
from services.registry.domain import credentials as rules
from services.registry.domain.collectors import actor_or_default
from services.registry.domain.credentials import (
    Credential,
    CredentialInfo,
    CredentialType,
    EncryptedCredential,
    SnmpV2c,
    SnmpV3,
    SshLogin,
)
from services.registry.registry import utc_now
from services.registry.store.queries import RegistryStore
from services.registry.store.secrets import DecryptionError, SecretBox

log = structlog.get_logger(__name__)

BINDING_PREFIX = b"outpost-registry-credential-v1\x00"


class Credentials:
    """Discovery credentials, encrypted at rest under one secret key."""

    def __init__(self, store: RegistryStore, box: SecretBox, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._box = box
        self._now = clock

    async def create(self, credential: Credential, *, actor: str) -> CredentialInfo:
        # An encrypted SSH key runs its KDF here, at a cost the key file chooses.
        credential = await asyncio.to_thread(rules.validate, credential)
        info = CredentialInfo(
            name=credential.name,
            type=credential.type,
            username=credential.username,
            created_at=self._now(),
            created_by=actor_or_default(actor),
        )
        plaintext = _encode(credential).SerializeToString()
        nonce, ciphertext = self._box.encrypt(plaintext, _binding(info.name, info.type))
        encrypted = EncryptedCredential(info=info, nonce=nonce, ciphertext=ciphertext, key_id=self._box.key_id)
        async with self._store.write(exclusive=False) as tx:
            if await tx.credential_exists(info.name) or not await tx.insert_credential(encrypted):
                raise rules.already_exists(info.name)
        log.info("credential_created", credential=info.name, type=info.type.value, actor=info.created_by)
        return info

    async def list_credentials(self) -> list[CredentialInfo]:
        async with self._store.read() as tx:
            return await tx.credentials()

    async def delete(self, name: str, *, actor: str = "") -> None:
        name = rules.require_name(name)
        async with self._store.write(exclusive=False) as tx:
            deleted = await tx.delete_credential(name)
        if not deleted:
            raise rules.not_found([name])
        log.info("credential_deleted", credential=name, actor=actor_or_default(actor))

    async def seal(self, instance_uid: str, names: Sequence[str], context: str) -> agent_pb2.SealedSecret:
        """The named credentials as one `CredentialSet`, sealed to an enabled collector."""
        wanted = rules.seal_request(instance_uid, list(names), context)
        async with self._store.read() as tx:
            collector = await tx.collector_by_uid(instance_uid)
            found = {c.info.name: c for c in await tx.encrypted_credentials(wanted)}
        try:
            collector = rules.require_sealable(collector, instance_uid)
        except errors.FailedPrecondition:
            log.warning(
                "credentials_seal_refused",
                instance_uid=instance_uid,
                collector=collector.name if collector else "",
                state=str(collector.state) if collector else "",
                credentials=wanted,
                context=context,
            )
            raise
        missing = [n for n in wanted if n not in found]
        if missing:
            raise rules.not_found(missing)
        chosen = [found[n] for n in wanted]
        credential_set = agent_pb2.CredentialSet()
        for encrypted in chosen:
            credential_set.credentials.add().ParseFromString(self._decrypt(encrypted))
        # HPKE only to a collector whose signed hello says it opens it (ADR 0020).
        algorithm = sealing.choose_algorithm(collector.sealing_algorithms)
        try:
            sealed = sealing.seal(
                collector.encryption_public_key, credential_set.SerializeToString(), context, algorithm=algorithm
            )
        except sealing.SealedSecretError as exc:
            raise errors.FailedPrecondition(
                f"cannot seal credentials to collector '{collector.name}': {exc}; "
                "remove it and register the reinstalled collector"
            ) from exc
        metrics.CREDENTIALS_SEALED.inc(len(chosen))
        log.info(
            "credentials_sealed",
            collector=collector.name,
            instance_uid=instance_uid,
            credentials=wanted,
            types=[c.info.type.value for c in chosen],
            context=context,
            algorithm=algorithm,
        )
        return sealed

    async def check_secret_key(self) -> None:
        """At start: warn when stored credentials were encrypted under another key."""
        counts = await self._store.credential_key_ids()
        others = {k: n for k, n in counts.items() if k != self._box.key_id}
        if others:
            log.warning(
                "credentials_under_other_secret_key",
                key_id=self._box.key_id,
                other_key_ids=sorted(others),
                credentials=sum(others.values()),
                advice="start with the --secret-key-file they were created under, or re-create them",
            )

    def _decrypt(self, encrypted: EncryptedCredential) -> bytes:
        info = encrypted.info
        if encrypted.key_id != self._box.key_id:
            log.error(
                "credential_undecryptable",
                credential=info.name,
                type=info.type.value,
                stored_key_id=encrypted.key_id,
                key_id=self._box.key_id,
            )
            raise errors.FailedPrecondition(
                f"credential '{info.name}' was encrypted under secret key {encrypted.key_id}, but this registry "
                f"runs with secret key {self._box.key_id}: start it with the original --secret-key-file, "
                "or delete and re-create the credential"
            )
        try:
            return self._box.decrypt(encrypted.nonce, encrypted.ciphertext, _binding(info.name, info.type))
        except DecryptionError as exc:
            log.error("credential_undecryptable", credential=info.name, type=info.type.value, key_id=self._box.key_id)
            raise errors.FailedPrecondition(
                f"credential '{info.name}' does not decrypt under secret key {self._box.key_id}: its stored row "
                "was altered or copied from another row; delete and re-create it"
            ) from exc


def _binding(name: str, credential_type: CredentialType) -> bytes:
    """Associated data: the type (a fixed word without NUL) then the name; unambiguous."""
    return BINDING_PREFIX + credential_type.value.encode() + b"\x00" + name.encode()


def _encode(credential: Credential) -> agent_pb2.Credential:
    secret = credential.secret
    message = agent_pb2.Credential(name=credential.name)
    if isinstance(secret, SnmpV2c):
        message.snmp_v2c.community = secret.community
    elif isinstance(secret, SnmpV3):
        message.snmp_v3.CopyFrom(
            agent_pb2.SnmpV3(
                username=secret.username,
                auth_protocol=secret.auth_protocol,
                auth_key=secret.auth_key,
                priv_protocol=secret.priv_protocol,
                priv_key=secret.priv_key,
            )
        )
    elif isinstance(secret, SshLogin):
        message.ssh.CopyFrom(
            agent_pb2.SshLogin(
                username=secret.username,
                password=secret.password,
                private_key_pem=secret.private_key_pem,
                passphrase=secret.passphrase,
            )
        )
    return message
