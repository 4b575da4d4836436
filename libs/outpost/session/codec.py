"""Envelope and frame codecs shared by every transport.

Raw TCP frames are a 4-byte big-endian length followed by one serialized envelope.
`FrameDecoder` is incremental (feed any chunking) and refuses a length above its bound
before buffering it, so a hostile length cannot make the gateway allocate.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError

LENGTH_BYTES = 4
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024

R = agent_pb2.DisconnectReason


def decode_collector_message(data: bytes) -> agent_pb2.CollectorMessage:
    """Parse one envelope from a collector; RemoteProtocolError MALFORMED_FRAME if it is not."""
    message = agent_pb2.CollectorMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RemoteProtocolError(R.DISCONNECT_REASON_MALFORMED_FRAME, f"malformed envelope: {exc}") from exc
    return message


def decode_server_message(data: bytes) -> agent_pb2.ServerMessage:
    """Parse one envelope from the server; RemoteProtocolError MALFORMED_FRAME if it is not."""
    message = agent_pb2.ServerMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RemoteProtocolError(R.DISCONNECT_REASON_MALFORMED_FRAME, f"malformed envelope: {exc}") from exc
    return message


def encode_frame(payload: bytes) -> bytes:
    """One TCP frame: the 4-byte big-endian length, then the payload."""
    return len(payload).to_bytes(LENGTH_BYTES, "big") + payload


class FrameDecoder:
    """Split a byte stream into length-prefixed frames; raise on an oversized length."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer `data`; return every frame it completes, in order."""
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= LENGTH_BYTES:
            length = int.from_bytes(self._buffer[:LENGTH_BYTES], "big")
            if length > self.max_frame_bytes:
                raise RemoteProtocolError(
                    R.DISCONNECT_REASON_FRAME_TOO_LARGE,
                    f"frame of {length} bytes exceeds the limit of {self.max_frame_bytes} bytes" + _hint(self._buffer),
                )
            end = LENGTH_BYTES + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[LENGTH_BYTES:end]))
            del self._buffer[:end]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buffer)


# The first four bytes of every HTTP/1 method and of the HTTP/2 connection preface.
_HTTP_STARTS = frozenset({b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"PATC", b"OPTI", b"CONN", b"TRAC", b"PRI "})


def _hint(buffer: bytearray) -> str:
    """Name the usual mistake behind a huge length: another protocol on the agent port."""
    head = bytes(buffer[:4])
    if head in _HTTP_STARTS:
        return " (an HTTP client on the TCP agent port? WebSocket agents use /v1/agent on the HTTP port)"
    if head[:2] == b"\x16\x03":
        return " (a TLS client on a plaintext TCP agent port?)"
    return ""
