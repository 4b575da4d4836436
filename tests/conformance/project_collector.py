"""The project's own collector session code, driven over raw TCP like the minimal collector.

`outpost.session.collector.CollectorSession` decides what to send (Hello, Proof, heartbeats,
job updates, batches) and checks what it receives; with an access key,
`outpost.session.noise.wire.InitiatorEnd` runs the sealed session (the Noise handshake,
then records). This wrapper only moves frames (`outpost.session.codec`) between them and a
socket, with the same methods as `minimal_collector.MinimalCollector`, so one conformance
suite drives both. Refusals and an unproven server raise the minimal collector's
exceptions, so the tests catch one kind.
"""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from outpost import sealing
from outpost.access_key import AccessKey
from outpost.agent.v1 import agent_pb2
from outpost.session import codec, key_rotation
from outpost.session.collector import ACCEPTED_STATES, CollectorSession
from outpost.session.noise import SealedSessionError
from outpost.session.noise.wire import REPLY_REFUSAL, HandshakeRefused, InitiatorEnd
from outpost.version import PROTOCOL_VERSION
from services.collector.domain.credentials import password_verifier
from services.collector.service_password import ServicePassword
from tests.conformance.minimal_collector import ConnectionClosed, Refused, ServerNotProven, raw_key


class ProjectCollector:
    kind = "project"

    def __init__(
        self,
        url: str,
        *,
        name: str,
        zone: str,
        username: str,
        password: str,
        access_key: str | None = None,
        pinned_server_key: bytes | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the conformance suite drives tcp://HOST:PORT, not {url!r}")
        self.address = (parts.hostname, parts.port)
        self.pb = agent_pb2
        self.identity_key = Ed25519PrivateKey.generate()
        self.public_key = raw_key(self.identity_key)
        self.hello_fields: dict[str, Any] = {
            "protocol_version": PROTOCOL_VERSION,
            "capabilities": ["state_change.v1"],
            "instance_uid": secrets.token_hex(16),
            "name": name,
            "zone": zone,
            "version": "conformance",
            "public_key": self.public_key,
            "username": username,
            "password_verifier": password_verifier(password, username=username, public_key=self.public_key),
            "encryption_public_key": sealing.public_key_bytes(X25519PrivateKey.generate()),
            "sealing_algorithms": list(sealing.OPENS),
        }
        self.password = password
        self.core: CollectorSession | None = None
        self.sock: socket.socket | None = None
        self._decoder = codec.FrameDecoder()
        self._frames: list[bytes] = []
        self._raw_sequence = 0
        self.received: list[Any] = []
        self.challenge: Any = None
        self.access_key = AccessKey.parse(access_key) if access_key else None
        self.noise_key = X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        self.pinned_server_key = pinned_server_key
        self.server_key: bytes | None = None
        self.sealed: InitiatorEnd | None = None

    def connect(self, seal: bool = True) -> None:
        self.core, self.sealed, self._decoder, self._frames = None, None, codec.FrameDecoder(), []
        self.sock = socket.create_connection(self.address, timeout=5)
        self.sock.settimeout(0.05)
        if self.access_key is not None and seal:
            self.seal()

    def seal(self, pattern_byte: int | None = None) -> None:
        """The sealed handshake as the project's collector runs it (pinned key: the access key's, else ours)."""
        assert self.access_key is not None
        end = InitiatorEnd(
            static_private=self.noise_key,
            access_key_id=self.access_key.key_id,
            psk=self.access_key.secret,
            transport="tcp",
            server_static=self.access_key.server_public_key or self.pinned_server_key,
        )
        first = end.first_frame()
        if pattern_byte is not None:  # bad-input tests only
            first = bytes([pattern_byte]) + first[1:]
        self.send_raw(codec.encode_frame(first))
        try:
            for frame in end.read_reply(self._frame(15.0), time.monotonic()):
                self.send_raw(codec.encode_frame(frame))
        except HandshakeRefused as exc:
            raise Refused(exc.disconnect) from exc
        except SealedSessionError as exc:
            raise ServerNotProven(str(exc)) from exc
        self.sealed = end
        self.server_key = end.server_key

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def send_envelope(self, data: bytes) -> None:
        frames = self.sealed.seal(data, time.monotonic()) if self.sealed else [data]
        for frame in frames:
            self.send_raw(codec.encode_frame(frame))

    def send(self, **body: Any) -> Any:
        """An envelope the session would not send (bad-input tests), framed by the codec."""
        self._raw_sequence += 1
        message = agent_pb2.CollectorMessage(sequence=self._raw_sequence, **body)
        self.send_envelope(message.SerializeToString())
        return message

    def _flush(self) -> None:
        assert self.core is not None
        for message in self.core.data_to_send():
            message.sent_at_unix_ms = int(time.time() * 1000)
            self.send_envelope(message.SerializeToString())
        self.core.events_received()

    def _frame(self, timeout: float) -> bytes:
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while not self._frames:
            if self.core is not None:
                self.core.tick(time.monotonic())  # heartbeats on time
                self._flush()
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
            self._frames.extend(self._decoder.feed(chunk))
        return self._frames.pop(0)

    def refusal(self, timeout: float = 15.0) -> Any:
        frame = self._frame(timeout)
        if frame[:1] != bytes([REPLY_REFUSAL]):
            raise AssertionError(f"expected a refusal (00 || Disconnect), got a frame starting {frame[:8].hex()}")
        disconnect = agent_pb2.Disconnect.FromString(frame[1:])
        self.wait_closed()
        return disconnect

    def recv(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame(max(0.0, deadline - time.monotonic()))
            envelope = self.sealed.open(frame) if self.sealed else frame
            if self.sealed is not None and self.pinned_server_key is None:
                self.pinned_server_key = self.sealed.pin_candidate
            if envelope is not None:
                break
        message = codec.decode_server_message(envelope)
        if self.core is not None:
            self.core.receive(message, time.monotonic())
            self._flush()
        return message

    def expect(self, kind: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.0, deadline - time.monotonic()))
            body = message.WhichOneof("body")
            if body == kind:
                return message
            if body == "disconnect":
                raise AssertionError(f"expected {kind}, got Disconnect: {message.disconnect}")
            self.received.append(message)

    def wait_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv(max(0.0, deadline - time.monotonic()))
            except ConnectionClosed:
                return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def hello(self) -> Any:
        """Start the session core: it sends the Hello and answers the Challenge itself."""
        self.core = CollectorSession(
            hello=agent_pb2.Hello(**self.hello_fields),
            sign=self.identity_key.sign,
            now=time.monotonic(),
            channel_binding=self.sealed.handshake_hash if self.sealed else b"",
            password_proofs=ServicePassword(username=self.hello_fields["username"], password=self.password).proofs,
        )
        self.core.start(time.monotonic())
        self._flush()

    def handshake(self) -> Any:
        self.hello()
        assert self.core is not None
        while True:
            message = self.recv(15.0)
            body = message.WhichOneof("body")
            if body == "challenge":
                self.challenge = message.challenge
            elif body in ("pending", "welcome", "disconnect"):
                assert body == "disconnect" or self.core.state in ACCEPTED_STATES
                return message
            else:
                self.received.append(message)

    def heartbeat(self) -> None:
        assert self.core is not None
        due = self.core.next_deadline()
        assert due is not None, "no heartbeat outside an accepted session"
        self.core.tick(max(due, time.monotonic()))
        self._flush()

    def key_rotation(
        self,
        new_key: Ed25519PrivateKey,
        *,
        signer: Ed25519PrivateKey | None = None,
        handshake_hash: bytes | None = None,
        prove: bool = True,
    ) -> Any:
        """A KeyRotation built by `outpost.session.key_rotation` (the forgeries by hand); its result."""
        assert self.core is not None and self.sealed is not None
        binding = self.sealed.handshake_hash if handshake_hash is None else handshake_hash
        rotation = key_rotation.build(self.hello_fields["instance_uid"], self.identity_key, new_key, binding)
        if signer is not None:
            rotation.signature = signer.sign(
                key_rotation.message(self.hello_fields["instance_uid"], self.public_key, raw_key(new_key), binding)
            )
        if not prove:
            rotation.new_key_signature = b""
        assert self.core.send_key_rotation(rotation)
        self._flush()
        while True:
            answer = self.expect("rotation").rotation
            if answer.HasField("key_rotation"):
                return answer.key_rotation

    def job_update(self, **fields: Any) -> None:
        assert self.core is not None
        assert self.core.send_job_update(agent_pb2.JobUpdate(**fields))
        self._flush()

    def result_batch(self, **fields: Any) -> None:
        assert self.core is not None
        assert self.core.send_result_batch(agent_pb2.ResultBatch(**fields))
        self._flush()
