"""A raw agent-protocol client over TCP that seals its frames: for tests that craft envelopes.

Tests that send a gateway hand-made envelopes (a wrong protocol version, a proof before
the hello, a bad proof) need the sealed session around them now that every transport
requires it (ADR 0019). This client runs the collector's end (`InitiatorEnd`) with a
plane's access key and a fresh Noise key, then sends envelopes as sealed records and
reads the gateway's replies opened, or its typed refusal as a Disconnect.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from outpost.access_key import AccessKey, read_access_key_file
from outpost.agent.v1 import agent_pb2
from outpost.session.codec import FrameDecoder, encode_frame
from outpost.session.noise.wire import REPLY_REFUSAL, InitiatorEnd


def decode_reply(frame: bytes) -> agent_pb2.ServerMessage:
    """A typed handshake refusal, or a legacy cleartext envelope, as a ServerMessage."""
    if frame[:1] == bytes([REPLY_REFUSAL]):
        return agent_pb2.ServerMessage(disconnect=agent_pb2.Disconnect.FromString(frame[1:]))
    return agent_pb2.ServerMessage.FromString(frame)


class SealedTcpClient:
    def __init__(self, address: str, access_key: AccessKey | Path, timeout: float = 10.0) -> None:
        key = read_access_key_file(access_key) if isinstance(access_key, Path) else access_key
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._decoder = FrameDecoder(1 << 20)
        self._frames: list[bytes] = []
        self.end = InitiatorEnd(
            static_private=X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()),
            access_key_id=key.key_id,
            psk=key.secret,
            transport="tcp",
            server_static=key.server_public_key,
        )
        self.refusal: agent_pb2.Disconnect | None = None

    def handshake(self) -> bool:
        """Open the sealed session; False (and `refusal` set) when the gateway refused it."""
        self.sock.sendall(encode_frame(self.end.first_frame()))
        reply = self._read_frame()
        if reply is None:
            return False
        if reply[:1] == bytes([REPLY_REFUSAL]):
            self.refusal = decode_reply(reply).disconnect
            return False
        for frame in self.end.read_reply(reply, time.monotonic()):
            self.sock.sendall(encode_frame(frame))
        return True

    def send(self, message: agent_pb2.CollectorMessage) -> None:
        for record in self.end.seal(message.SerializeToString(), time.monotonic()):
            self.sock.sendall(encode_frame(record))

    def recv(self) -> agent_pb2.ServerMessage | None:
        """The gateway's next envelope, or None once it closed the connection."""
        while True:
            frame = self._read_frame()
            if frame is None:
                return None
            envelope = self.end.open(frame)
            if envelope is not None:
                return agent_pb2.ServerMessage.FromString(envelope)

    def until_closed(self) -> list[agent_pb2.ServerMessage]:
        out = []
        while (message := self.recv()) is not None:
            out.append(message)
        return out

    def _read_frame(self) -> bytes | None:
        while not self._frames:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self._frames.extend(self._decoder.feed(data))
        return self._frames.pop(0)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()
