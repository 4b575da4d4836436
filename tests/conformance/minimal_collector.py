"""A minimal collector written from docs/protocol.md alone: TCP framing, sealed session, handshake, session.

It must not import the project's packages (`outpost`, `services`, `outpostctl`, `tests`;
`test_no_project_imports.py` checks the imports of this file): what it knows of the
protocol is what the document says, so when it passes the conformance suite the document
is enough to write a collector. It uses only the standard library, `protobuf` and
`grpc_tools` (to generate its own message classes from `protos/` into a temporary
directory), `cryptography` (Ed25519, X25519), `argon2-cffi` (the verifier) and
`noiseprotocol` (the Noise Protocol Framework, for the sealed session of §12).

Section numbers in comments refer to docs/protocol.md.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import secrets
import socket
import sys
import tempfile
import time
import warnings
from base64 import b64encode, urlsafe_b64decode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import argon2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from grpc_tools import protoc
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import NoiseInvalidMessage

PROTOS = Path(__file__).resolve().parents[2] / "protos"

# §4.2 The signed transcript.
HANDSHAKE_CONTEXT = b"outpost-agent-v1-handshake"
# §5 The password verifier.
VERIFIER_CONTEXT = b"outpost-registration-v1"
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19456
ARGON2_PARALLELISM = 1
ARGON2_HASH_BYTES = 32
ARGON2_SALT_BYTES = 16
# §4.4 The service-password proof (SCRAM with argon2id).
PASSWORD_PROOF_CONTEXT = b"outpost-password-proof-v1"
PASSWORD_MAX_MEMORY_KIB = 262_144
PASSWORD_MAX_TIME_COST = 16
PASSWORD_MAX_PARALLELISM = 16
PASSWORD_MAX_SETS = 2
# §12.14 Rotating the identity key.
KEY_ROTATION_CONTEXT = b"outpost-key-rotation/1"
# §2.1 Raw TCP.
MAX_FRAME_BYTES = 1024 * 1024
PROTOCOL_VERSION = 1


@functools.cache
def agent_messages() -> ModuleType:
    """`agent_pb2`, generated once per process from protos/ into a temporary directory."""
    out = Path(tempfile.mkdtemp(prefix="minimal-collector-protos-"))
    include = Path(protoc.__file__).parent / "_proto"
    source = PROTOS / "outpost" / "agent" / "v1" / "agent.proto"
    if protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={out}", str(source)]) != 0:
        raise RuntimeError("protoc failed on agent.proto")
    # A private package name, so it can never shadow (or be shadowed by) the project's.
    package = out / "minimal_collector_protos"
    (out / "outpost" / "agent" / "v1").rename(package)
    (package / "__init__.py").touch()
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("minimal_collector_protos.agent_pb2")
    finally:
        sys.path.remove(str(out))


# --- §4.2, §5, §2.1: the byte-exact constructions ---------------------------------------------
def length_prefixed(parts: Iterable[bytes]) -> bytes:
    """Each part as a 4-byte big-endian unsigned length, then its bytes."""
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def handshake_transcript(
    hello: dict[str, Any], nonce: bytes, server_instance: str, handshake_hash: bytes = b""
) -> bytes:
    """The bytes the collector signs (§4.3); `hello` maps Hello field names to values.

    `handshake_hash` is the sealed session's Noise handshake hash (§12.9), empty when unsealed.
    """
    text = lambda name: str(hello.get(name, "")).encode("utf-8")  # noqa: E731
    parts = [
        HANDSHAKE_CONTEXT,
        nonce,
        server_instance.encode("utf-8"),
        text("instance_uid"),
        text("name"),
        text("zone"),
        text("username"),
        text("password_verifier"),
        bytes(hello.get("public_key", b"")),
        text("bound_server_instance"),
        int(hello.get("protocol_version", 0)).to_bytes(4, "big"),
        bytes(hello.get("encryption_public_key", b"")),
    ]
    algorithms = list(hello.get("sealing_algorithms", ()))
    if algorithms:
        parts += [b"sealing_algorithms", length_prefixed(a.encode("utf-8") for a in algorithms)]
    if handshake_hash:
        parts += [b"handshake_hash", handshake_hash]
    return length_prefixed(parts)


def key_rotation_message(instance_uid: str, old_key: bytes, new_key: bytes, handshake_hash: bytes) -> bytes:
    """What both keys sign to rotate the identity key (§12.14)."""
    return length_prefixed([KEY_ROTATION_CONTEXT, instance_uid.encode("utf-8"), old_key, new_key, handshake_hash])


def verifier_input(username: str, public_key: bytes, password: str) -> bytes:
    """What argon2id hashes (§5): the password bound to the username and the identity key."""
    return length_prefixed([VERIFIER_CONTEXT, username.encode("utf-8"), public_key, password.encode("utf-8")])


def password_verifier(username: str, public_key: bytes, password: str, salt: bytes | None = None) -> str:
    """The argon2id PHC string sent as `Hello.password_verifier` (§5)."""
    return argon2.low_level.hash_secret(
        verifier_input(username, public_key, password),
        salt if salt is not None else secrets.token_bytes(ARGON2_SALT_BYTES),
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        hash_len=ARGON2_HASH_BYTES,
        type=argon2.low_level.Type.ID,
    ).decode("ascii")


def salted_password(username: str, password: str, params: Any) -> bytes:
    """SaltedPassword (§4.4): raw 32-byte argon2id of the §5 input for the parameters' bound key."""
    if not (
        1 <= params.parallelism <= PASSWORD_MAX_PARALLELISM
        and 1 <= params.time_cost <= PASSWORD_MAX_TIME_COST
        and 8 * params.parallelism <= params.memory_kib <= PASSWORD_MAX_MEMORY_KIB
        and 8 <= len(params.salt) <= 64
        and len(params.public_key) == 32
    ):
        raise ValueError(f"password parameters beyond the caps of §4.4: {params}")
    return argon2.low_level.hash_secret_raw(
        verifier_input(username, params.public_key, password),
        params.salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=ARGON2_HASH_BYTES,
        type=argon2.low_level.Type.ID,
    )


def password_auth_message(transcript: bytes, params: Any) -> bytes:
    """AuthMessage (§4.4): context, the §4.2 transcript, then the parameter set, length-prefixed."""
    return length_prefixed(
        [
            PASSWORD_PROOF_CONTEXT,
            transcript,
            params.salt,
            params.memory_kib.to_bytes(4, "big"),
            params.time_cost.to_bytes(4, "big"),
            params.parallelism.to_bytes(4, "big"),
            params.public_key,
        ]
    )


def password_client_proof(salted: bytes, auth_message: bytes) -> bytes:
    """ClientProof (§4.4) = ClientKey XOR HMAC-SHA256(SHA-256(ClientKey), AuthMessage)."""
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    return bytes(a ^ b for a, b in zip(client_key, signature, strict=True))


def fingerprint(public_key: bytes) -> str:
    """The admin-facing fingerprint: "SHA256:" + unpadded standard base64 of SHA-256 over the raw key (§4.4)."""
    return "SHA256:" + b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")


def tcp_frame(payload: bytes) -> bytes:
    """One TCP frame (§2.1): 4-byte big-endian length, then the serialized envelope."""
    return len(payload).to_bytes(4, "big") + payload


def raw_key(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# --- §12 sealed sessions: access key, Noise handshake, records -----------------------------
ACCESS_KEY_PREFIX = "outpost-ak1"
PATTERN_IK, PATTERN_XX = 1, 2
NOISE_PROTOCOLS = {
    PATTERN_IK: b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
    PATTERN_XX: b"Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s",
}
REPLY_REFUSAL, REPLY_NOISE = 0x00, 0x01
FLAG_REKEY, FLAG_MORE = 0x01, 0x02
MAX_RECORD_BYTES = 65535
MAX_FRAGMENT_BYTES = MAX_RECORD_BYTES - 16 - 1  # the tag, the flags byte
REKEY_EVERY_RECORDS = 65536
REKEY_AFTER_SECONDS = 600.0
SEALED_MAX_ENVELOPE_BYTES = MAX_FRAME_BYTES


@dataclass(frozen=True)
class AccessKey:
    """`outpost-ak1.<id>.<secret>[.<server public key>]`, secret and key in unpadded URL-safe base64 (§12.1)."""

    key_id: str
    secret: bytes
    server_key: bytes | None

    @classmethod
    def parse(cls, text: str) -> AccessKey:
        parts = text.strip().split(".")
        if parts[0] != ACCESS_KEY_PREFIX or len(parts) not in (3, 4):
            raise ValueError("not an access key")

        def raw(field: str) -> bytes:
            value = urlsafe_b64decode(field + "=" * (-len(field) % 4))
            if len(value) != 32:
                raise ValueError("an access key's secret and server key are 32 bytes")
            return value

        return cls(parts[1], raw(parts[2]), raw(parts[3]) if len(parts) == 4 else None)


class Refused(Exception):
    """The gateway refused the handshake (a 0x00 reply, §12.5): advice, not authenticated."""

    def __init__(self, disconnect: Any) -> None:
        super().__init__(f"refused: {disconnect}")
        self.disconnect = disconnect


class SessionBroken(Exception):
    """A record that does not open (altered, replayed, reordered, truncated) or breaks a rule: close (§12.12)."""


class ServerNotProven(Exception):
    """The gateway did not prove the pinned server key (or the access key): never go on (§12.11)."""


def prologue(transport: str) -> bytes:
    return f"outpost-agent/{PROTOCOL_VERSION}/{transport}".encode("ascii")


class SealedInitiator:
    """The collector's Noise handshake (§12.3-12.6): IK when the server key is pinned, XX otherwise."""

    def __init__(
        self,
        access_key: AccessKey,
        static_private: bytes,
        transport: str,
        pinned: bytes | None = None,
        ephemeral_private: bytes | None = None,
    ) -> None:
        self.access_key = access_key
        self.server_key = pinned or access_key.server_key
        self.pattern = PATTERN_IK if self.server_key else PATTERN_XX
        self.noise = NoiseConnection.from_name(NOISE_PROTOCOLS[self.pattern])
        self.noise.set_prologue(prologue(transport))
        self.noise.set_psks(psk=access_key.secret)
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
        if self.server_key:
            self.noise.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, self.server_key)
        if ephemeral_private is not None:  # test vectors only: a fixed ephemeral kills forward secrecy
            self.noise.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral_private)
        self.noise.set_as_initiator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.noise.start_handshake()

    def message_1(self, payload: bytes = b"") -> bytes:
        key_id = self.access_key.key_id.encode("ascii")
        return bytes([self.pattern]) + bytes(self.noise.write_message(bytes([len(key_id)]) + key_id + payload))

    def read_reply(self, frame: bytes, pb: Any) -> bytes:
        """The gateway's typed reply: message 2's payload, or Refused / ServerNotProven."""
        if frame[:1] == bytes([REPLY_REFUSAL]):
            raise Refused(pb.Disconnect.FromString(frame[1:]))
        if frame[:1] != bytes([REPLY_NOISE]):
            raise ServerNotProven(f"unknown reply type {frame[:1].hex()}")
        try:
            payload = bytes(self.noise.read_message(frame[1:]))
        except (InvalidTag, NoiseInvalidMessage, ValueError) as exc:
            raise ServerNotProven("message 2 did not decrypt: not the pinned server, or another access key") from exc
        if self.server_key is None:  # XX: what message 2 carried; trusted only once a record opens
            self.server_key = bytes(self.noise.noise_protocol.handshake_state.rs.public_bytes)
        return payload

    def message_3(self, payload: bytes = b"") -> bytes:
        """XX only: the bare third message (the collector's static key and the PSK)."""
        return bytes(self.noise.write_message(payload))

    def channel(self, now: float) -> SealedRecords:
        assert self.noise.handshake_finished and self.server_key is not None
        return SealedRecords(self.noise, self.server_key, confirmed=self.pattern == PATTERN_IK, now=now)


class SealedRecords:
    """Envelopes in and out as records: `flags || fragment`, counter nonces, rekeying (§12.7-12.8)."""

    def __init__(self, noise: NoiseConnection, server_key: bytes, *, confirmed: bool, now: float) -> None:
        self.noise = noise
        self.server_key = server_key
        self.server_confirmed = confirmed  # XX: pin server_key only once this is True
        self.handshake_hash = bytes(noise.get_handshake_hash())
        self._sent = self._opened = 0
        self._keyed_at = now
        self._partial = b""

    def seal(self, envelope: bytes, now: float) -> list[bytes]:
        records = []
        for start in range(0, max(len(envelope), 1), MAX_FRAGMENT_BYTES):
            fragment = envelope[start : start + MAX_FRAGMENT_BYTES]
            more = start + MAX_FRAGMENT_BYTES < len(envelope)
            rekey = not more and now - self._keyed_at >= REKEY_AFTER_SECONDS
            flags = (FLAG_MORE if more else 0) | (FLAG_REKEY if rekey else 0)
            records.append(self.noise.encrypt(bytes([flags]) + fragment))
            self._sent += 1
            if rekey or self._sent == REKEY_EVERY_RECORDS:
                self.noise.rekey_outbound_cipher()
                self._sent, self._keyed_at = 0, now
        return records

    def open(self, record: bytes) -> bytes | None:
        """The envelope this record completes (None: more follow); SessionBroken ends the session."""
        if not 17 <= len(record) <= MAX_RECORD_BYTES:
            raise SessionBroken(f"a record of {len(record)} bytes")
        try:
            plaintext = self.noise.decrypt(record)
        except NoiseInvalidMessage as exc:
            raise SessionBroken("a record failed authentication") from exc
        flags = plaintext[0]
        if flags & ~(FLAG_REKEY | FLAG_MORE):
            raise SessionBroken(f"undefined record flags {flags:#04x}")
        self.server_confirmed = True
        self._opened += 1
        if flags & FLAG_REKEY or self._opened == REKEY_EVERY_RECORDS:
            self.noise.rekey_inbound_cipher()
            self._opened = 0
        self._partial += plaintext[1:]
        if len(self._partial) > SEALED_MAX_ENVELOPE_BYTES:
            raise SessionBroken("an envelope above the bound")
        if flags & FLAG_MORE:
            return None
        envelope, self._partial = self._partial, b""
        return envelope


# --- the session ---------------------------------------------------------------------------
class ConnectionClosed(Exception):
    """The gateway closed the TCP connection."""


class MinimalCollector:
    """One TCP session to a gateway, driven step by step by the caller (the conformance tests).

    `expect(kind)` reads envelopes until one of `kind` arrives, answering heartbeats on time
    meanwhile (§6); envelopes of other kinds are kept in `received`.
    """

    kind = "minimal"

    def __init__(
        self,
        url: str,
        *,
        name: str,
        zone: str,
        username: str,
        password: str,
        sealing_algorithms: Sequence[str] = (),
        access_key: str | None = None,
        pinned_server_key: bytes | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the minimal collector speaks tcp://HOST:PORT only, not {url!r}")
        self.address = (parts.hostname, parts.port)
        self.pb = agent_messages()
        self.identity_key = Ed25519PrivateKey.generate()
        self.encryption_key = X25519PrivateKey.generate()
        self.public_key = raw_key(self.identity_key)
        self.hello_fields: dict[str, Any] = {
            "protocol_version": PROTOCOL_VERSION,
            "instance_uid": secrets.token_hex(16),
            "name": name,
            "zone": zone,
            "version": "minimal-collector/1",
            "bound_server_instance": "",
            "public_key": self.public_key,
            "username": username,
            "password_verifier": password_verifier(username, self.public_key, password),
            "encryption_public_key": raw_key(self.encryption_key),
            "sealing_algorithms": list(sealing_algorithms),
        }
        self.password = password  # §4.4: proven at every handshake of a registered collector
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._sequence = 0
        self.heartbeat_interval = 30.0
        self._next_heartbeat = float("inf")
        self.received: list[Any] = []
        self.challenge: Any = None
        # §12: with an access key every envelope travels in sealed records.
        self.access_key = AccessKey.parse(access_key) if access_key else None
        self.noise_key = X25519PrivateKey.generate()  # the Noise static key (§12.2), its own key pair
        self.pinned_server_key = pinned_server_key
        self.server_key: bytes | None = None
        self.sealed: SealedRecords | None = None

    # transport (§2.1, §12.10)
    def connect(self, seal: bool = True) -> None:
        """Open the TCP connection and, with an access key, the sealed session (unless `seal` is False).

        Called again after `close()`, it reconnects: a new session, numbered from 1 again (§3).
        """
        self._buffer, self._sequence, self.sealed = b"", 0, None
        self.sock = socket.create_connection(self.address, timeout=5)
        self.sock.settimeout(0.05)
        if self.access_key is not None and seal:
            self.seal()

    def seal(self, pattern_byte: int | None = None) -> None:
        """§12.4-12.6: message 1, the gateway's typed reply, XX message 3. Refused / ServerNotProven on failure."""
        assert self.access_key is not None
        private = self.noise_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        initiator = SealedInitiator(self.access_key, private, "tcp", pinned=self.pinned_server_key)
        first = initiator.message_1()
        if pattern_byte is not None:  # bad-input tests only
            first = bytes([pattern_byte]) + first[1:]
        self.send_raw(tcp_frame(first))
        initiator.read_reply(self._frame(15.0), self.pb)
        if initiator.pattern == PATTERN_XX:
            self.send_raw(tcp_frame(initiator.message_3()))
        self.sealed = initiator.channel(time.monotonic())
        self.server_key = self.sealed.server_key

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def send_envelope(self, data: bytes) -> None:
        """One serialized envelope: a TCP frame, or in a sealed session its records, one frame each."""
        frames = self.sealed.seal(data, time.monotonic()) if self.sealed else [data]
        for frame in frames:
            self.send_raw(tcp_frame(frame))

    def send(self, **body: Any) -> Any:
        """Send one CollectorMessage with the next sequence number (§3.1)."""
        self._sequence += 1
        message = self.pb.CollectorMessage(sequence=self._sequence, sent_at_unix_ms=int(time.time() * 1000), **body)
        self.send_envelope(message.SerializeToString())
        return message

    def recv(self, timeout: float) -> Any:
        """The next ServerMessage; ConnectionClosed at EOF, TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame(max(0.0, deadline - time.monotonic()))
            if self.sealed is None:
                return self.pb.ServerMessage.FromString(frame)
            envelope = self.sealed.open(frame)
            if self.pinned_server_key is None and self.access_key and self.access_key.server_key is None:
                self.pinned_server_key = self.sealed.server_key  # first contact: pin only now (§12.11)
            if envelope is not None:
                return self.pb.ServerMessage.FromString(envelope)

    def _frame(self, timeout: float) -> bytes:
        """The next TCP frame's body (§2.1), answering heartbeats on time while waiting."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buffer) >= 4:
                length = int.from_bytes(self._buffer[:4], "big")
                if length > MAX_FRAME_BYTES:
                    raise ValueError(f"server frame of {length} bytes")
                if len(self._buffer) >= 4 + length:
                    frame, self._buffer = self._buffer[4 : 4 + length], self._buffer[4 + length :]
                    return frame
            self._heartbeat_if_due()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server frame within {timeout:g}s")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionClosed("the gateway closed the connection")
            self._buffer += chunk

    def refusal(self, timeout: float = 15.0) -> Any:
        """The gateway's typed refusal before any keys exist (§12.5): its Disconnect, then the close."""
        frame = self._frame(timeout)
        if frame[:1] != bytes([REPLY_REFUSAL]):
            raise AssertionError(f"expected a refusal (00 || Disconnect), got a frame starting {frame[:8].hex()}")
        disconnect = self.pb.Disconnect.FromString(frame[1:])
        self.wait_closed()
        return disconnect

    def expect(self, kind: str, timeout: float = 15.0) -> Any:
        """Read until a message whose body is `kind`; a Disconnect instead fails loudly."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.0, deadline - time.monotonic()))
            self._observe(message)
            body = message.WhichOneof("body")
            if body == kind:
                return message
            if body == "disconnect":
                raise AssertionError(f"expected {kind}, got Disconnect: {message.disconnect}")
            self.received.append(message)

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Read until the gateway closes the connection (after a Disconnect)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._observe(self.recv(max(0.0, deadline - time.monotonic())))
            except ConnectionClosed:
                return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # the handshake (§4)
    def hello(self) -> Any:
        return self.send(hello=self.pb.Hello(**self.hello_fields))

    def prove(self, challenge: Any) -> Any:
        binding = self.sealed.handshake_hash if self.sealed else b""  # §12.9: the channel binding
        data = handshake_transcript(self.hello_fields, challenge.nonce, challenge.server_instance, binding)
        offered = list(challenge.password_parameters)
        if len(offered) > PASSWORD_MAX_SETS:
            raise ValueError(f"challenge offered {len(offered)} password parameter sets (§4.4: at most 2)")
        proofs = [
            password_client_proof(
                salted_password(self.hello_fields["username"], self.password, p), password_auth_message(data, p)
            )
            for p in offered
        ]
        return self.send(proof=self.pb.Proof(signature=self.identity_key.sign(data), password_proofs=proofs))

    def handshake(self) -> Any:
        """Hello, Challenge, Proof; the gateway's answer (Pending, Welcome or Disconnect)."""
        self.hello()
        self.challenge = self.expect("challenge").challenge
        self.prove(self.challenge)
        while True:
            message = self.recv(15.0)
            self._observe(message)
            if message.WhichOneof("body") in ("pending", "welcome", "disconnect"):
                return message
            self.received.append(message)

    # session (§6-§8)
    def heartbeat(self) -> None:
        self.send(heartbeat=self.pb.Heartbeat())
        self._next_heartbeat = time.monotonic() + self.heartbeat_interval

    def _heartbeat_if_due(self) -> None:
        if time.monotonic() >= self._next_heartbeat:
            self.heartbeat()

    def _observe(self, message: Any) -> None:
        """Follow the heartbeat interval the server gives (§6)."""
        body = message.WhichOneof("body")
        interval = 0
        if body in ("pending", "welcome"):
            interval = getattr(message, body).heartbeat_interval_seconds
        elif body == "config_update":
            interval = message.config_update.heartbeat_interval_seconds
        if interval:
            self.heartbeat_interval = float(interval)
            self._next_heartbeat = time.monotonic() + self.heartbeat_interval

    def key_rotation(
        self,
        new_key: Ed25519PrivateKey,
        *,
        signer: Ed25519PrivateKey | None = None,
        handshake_hash: bytes | None = None,
        prove: bool = True,
    ) -> Any:
        """§12.14: ask to move to `new_key`; the KeyRotationResult. `signer`, `handshake_hash` and
        `prove=False` (no new-key signature) make the forgeries the attacker tests send."""
        assert self.sealed is not None
        new_public = raw_key(new_key)
        signed = key_rotation_message(
            self.hello_fields["instance_uid"],
            self.public_key,
            new_public,
            self.sealed.handshake_hash if handshake_hash is None else handshake_hash,
        )
        rotation = self.pb.KeyRotation(
            new_public_key=new_public,
            signature=(signer or self.identity_key).sign(signed),
            new_key_signature=new_key.sign(signed) if prove else b"",
        )
        self.send(key_rotation=rotation)
        while True:
            answer = self.expect("rotation").rotation
            if answer.HasField("key_rotation"):
                return answer.key_rotation

    def job_update(self, **fields: Any) -> None:
        self.send(job_update=self.pb.JobUpdate(**fields))

    def result_batch(self, **fields: Any) -> None:
        self.send(result_batch=self.pb.ResultBatch(**fields))
