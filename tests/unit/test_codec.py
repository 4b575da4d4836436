"""Frame and envelope codecs: any chunking decodes the same frames, hostile lengths and
foreign protocols fail early with a useful reason, and garbage never escapes as anything
but RemoteProtocolError MALFORMED_FRAME."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from outpost.session import codec
from outpost.session.errors import RemoteProtocolError

R = agent_pb2.DisconnectReason

HTTP_HINT = "(an HTTP client on the TCP agent port? WebSocket agents use /v1/agent on the HTTP port)"
TLS_HINT = "(a TLS client on a plaintext TCP agent port?)"


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=7000), max_size=40),
)
def test_payloads_split_at_any_points_decode_to_the_same_payloads(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(codec.encode_frame(payload) for payload in payloads)
    decoder = codec.FrameDecoder()

    decoded = [frame for chunk in split_at(stream, cuts) for frame in decoder.feed(chunk)]

    assert decoded == payloads
    assert decoder.buffered == 0


@given(payload=st.binary(min_size=1, max_size=100))
def test_incomplete_frame_is_held_until_its_last_byte_arrives(payload: bytes) -> None:
    frame = codec.encode_frame(payload)
    decoder = codec.FrameDecoder()

    assert [decoder.feed(frame[i : i + 1]) for i in range(len(frame) - 1)] == [[]] * (len(frame) - 1)
    assert decoder.buffered == len(frame) - 1
    assert decoder.feed(frame[-1:]) == [payload]
    assert decoder.buffered == 0


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    decoder = codec.FrameDecoder(max_frame_bytes=64)

    assert decoder.feed(codec.encode_frame(b"x" * 64)) == [b"x" * 64]


@pytest.mark.parametrize("length", [65, 1 << 20, (1 << 32) - 1])
def test_length_above_the_limit_is_refused_from_the_header_alone(length: int) -> None:
    decoder = codec.FrameDecoder(max_frame_bytes=64)

    with pytest.raises(RemoteProtocolError) as raised:
        decoder.feed(length.to_bytes(4, "big"))

    assert raised.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE
    assert raised.value.message == f"frame of {length} bytes exceeds the limit of 64 bytes"
    assert decoder.buffered == 4  # the body was never waited for


def test_length_above_the_limit_is_refused_as_soon_as_the_header_is_complete() -> None:
    decoder = codec.FrameDecoder(max_frame_bytes=64)
    header = (65).to_bytes(4, "big")

    assert decoder.feed(header[:3]) == []
    with pytest.raises(RemoteProtocolError) as raised:
        decoder.feed(header[3:])

    assert raised.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE


def test_oversized_frame_after_good_ones_is_refused() -> None:
    decoder = codec.FrameDecoder(max_frame_bytes=64)
    stream = codec.encode_frame(b"ok") + (1000).to_bytes(4, "big")

    with pytest.raises(RemoteProtocolError) as raised:
        decoder.feed(stream)

    assert raised.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE
    assert HTTP_HINT not in raised.value.message


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /v1/agent HTTP/1.1\r\nHost: outpost\r\n\r\n",
        b"POST /v1/agent HTTP/1.1\r\n",
        b"HEAD / HTTP/1.1\r\n",
        b"PUT / HTTP/1.1\r\n",
        b"DELETE / HTTP/1.1\r\n",
        b"PATCH / HTTP/1.1\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"CONNECT outpost:443 HTTP/1.1\r\n",
        b"TRACE / HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ],
    ids=lambda line: line.split(b" ")[0].decode(),
)
def test_http_request_on_the_tcp_port_is_refused_with_a_hint(request_line: bytes) -> None:
    decoder = codec.FrameDecoder()

    with pytest.raises(RemoteProtocolError) as raised:
        decoder.feed(request_line)

    assert raised.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE
    assert raised.value.message.endswith(HTTP_HINT)


@pytest.mark.parametrize("version", [b"\x01", b"\x03"])
def test_tls_client_hello_on_the_plaintext_port_is_refused_with_a_hint(version: bytes) -> None:
    client_hello = b"\x16\x03" + version + b"\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32)
    decoder = codec.FrameDecoder()

    with pytest.raises(RemoteProtocolError) as raised:
        decoder.feed(client_hello)

    assert raised.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE
    assert raised.value.message.endswith(TLS_HINT)


def test_envelope_survives_encoding_framing_and_decoding() -> None:
    message = agent_pb2.CollectorMessage(sequence=3, sent_at_unix_ms=1_700_000_000_000, heartbeat=agent_pb2.Heartbeat())
    decoder = codec.FrameDecoder()

    [frame] = decoder.feed(codec.encode_frame(message.SerializeToString()))

    assert codec.decode_collector_message(frame) == message


def test_envelope_with_invalid_utf8_in_a_string_is_malformed() -> None:
    # Hello (field 10) holding name (field 4) = b"\xff"
    data = bytes([0x52, 0x03, 0x22, 0x01, 0xFF])

    with pytest.raises(RemoteProtocolError) as raised:
        codec.decode_collector_message(data)

    assert raised.value.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    assert raised.value.message.startswith("malformed envelope: ")


@given(st.binary(max_size=200))
def test_collector_envelope_from_random_bytes_parses_or_is_malformed(data: bytes) -> None:
    try:
        message = codec.decode_collector_message(data)
    except RemoteProtocolError as exc:
        assert exc.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    else:
        assert isinstance(message, agent_pb2.CollectorMessage)


@given(st.binary(max_size=200))
def test_server_envelope_from_random_bytes_parses_or_is_malformed(data: bytes) -> None:
    try:
        message = codec.decode_server_message(data)
    except RemoteProtocolError as exc:
        assert exc.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    else:
        assert isinstance(message, agent_pb2.ServerMessage)


envelope_like = st.builds(
    lambda prefix, tail: prefix + tail,
    st.sampled_from([b"\x52", b"\x5a", b"\x62", b"\x6a", b"\x08", b"\x10", b"\xa3\x06"]),
    st.binary(max_size=120),
)


@given(envelope_like)
def test_envelope_that_starts_like_a_real_body_parses_or_is_malformed(data: bytes) -> None:
    try:
        codec.decode_collector_message(data)
    except RemoteProtocolError as exc:
        assert exc.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
