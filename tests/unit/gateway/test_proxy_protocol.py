"""The PROXY protocol parser against the HAProxy spec's examples, and everything it must refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.transports.proxy_protocol import (
    V1_MAX_BYTES,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    ProxyHeaderParser,
    could_be_proxy_header,
    encode_v1,
    encode_v2,
)

# The spec's own v1 examples (section 2.1), the longest possible lines included.
V1_TCP4 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
V1_TCP6_WORST = (
    b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
)
V1_UNKNOWN = b"PROXY UNKNOWN\r\n"
V1_UNKNOWN_WORST = (
    b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
)


def parse(data: bytes, chunk: int | None = None, max_bytes: int = 4096) -> tuple[ProxyHeader, bytes]:
    """Drive the parser as the listener does; return the header and the bytes it did not take."""
    parser = ProxyHeaderParser(max_bytes)
    offset = 0
    while True:
        want = parser.bytes_wanted()
        assert want > 0
        take = min(want, chunk or want)
        piece = data[offset : offset + take]
        if not piece:
            raise ProxyHeaderError("truncated (test: no more input)")
        offset += len(piece)
        header = parser.feed(piece)
        if header is not None:
            return header, data[offset:]


def test_the_specs_v1_examples_parse_and_leave_the_rest_unread() -> None:
    assert parse(V1_TCP4 + b"\x00\x00\x00\x05hello") == (
        ProxyHeader(1, ("192.168.0.1", 56324), ("192.168.0.11", 443)),
        b"\x00\x00\x00\x05hello",
    )
    header, rest = parse(V1_TCP6_WORST + b"\x16\x03\x01")
    assert len(V1_UNKNOWN_WORST) == V1_MAX_BYTES  # the spec's longest line
    assert header.source == ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    assert rest == b"\x16\x03\x01"
    assert parse(V1_UNKNOWN + b"X") == (ProxyHeader(1, None), b"X")
    assert parse(V1_UNKNOWN_WORST) == (ProxyHeader(1, None), b"")


def test_v2_proxy_headers_for_both_families_and_local_parse() -> None:
    v4 = encode_v2(("203.0.113.7", 40000), ("10.0.0.5", 6600))
    assert parse(v4 + b"rest") == (ProxyHeader(2, ("203.0.113.7", 40000), ("10.0.0.5", 6600)), b"rest")
    v6 = encode_v2(("2001:db8::7", 1), ("2001:db8::1", 6600))
    assert parse(v6)[0].source == ("2001:db8::7", 1)
    assert parse(encode_v2(None) + b"\x00")[0] == ProxyHeader(2, None)
    # A TLV (AWS's PP2_TYPE_AWS 0xEA with a VPC endpoint id) is skipped.
    tlv = b"\xea" + (13).to_bytes(2, "big") + b"\x01vpce-0123456"
    assert parse(encode_v2(("198.51.100.9", 5), ("10.0.0.5", 6600), tlvs=tlv))[0].source == ("198.51.100.9", 5)


def test_v2_unspec_family_means_the_connections_own_address() -> None:
    header = V2_SIGNATURE + bytes([0x21, 0x00]) + (0).to_bytes(2, "big")
    assert parse(header)[0] == ProxyHeader(2, None)


@given(st.integers(min_value=1, max_value=20))
def test_any_chunking_gives_the_same_header_and_never_over_reads(chunk: int) -> None:
    for data in (V1_TCP4, V1_TCP6_WORST, V1_UNKNOWN, encode_v2(("203.0.113.7", 40000), ("10.0.0.5", 6600))):
        header, rest = parse(data + b"after", chunk=chunk)
        assert rest == b"after"
        assert header == parse(data)[0]


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"GET / HTTP/1.1\r\n", "no v1 or v2 signature"),
        (b"\x00\x00\x00\x20handshake...", "no v1 or v2 signature"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "exactly"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "exactly"),
        (b"PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n", "not an IPv4"),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "not an IPv4"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "not an IPv6"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "over 65535"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n", "leading zeros"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "leading zeros"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + b"x" * 200, "without CRLF"),
        (b"PROXY " + b"A" * 200, "without CRLF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \xff\r\n", "not ASCII"),
        (V2_SIGNATURE + bytes([0x11, 0x11]) + (12).to_bytes(2, "big") + bytes(12), "version 1, not 2"),
        (V2_SIGNATURE + bytes([0x22, 0x11]) + (12).to_bytes(2, "big") + bytes(12), "neither LOCAL"),
        (V2_SIGNATURE + bytes([0x21, 0x41]) + (12).to_bytes(2, "big") + bytes(12), "family 4 is unknown"),
        (V2_SIGNATURE + bytes([0x21, 0x12]) + (12).to_bytes(2, "big") + bytes(12), "only STREAM"),
        (V2_SIGNATURE + bytes([0x21, 0x11]) + (8).to_bytes(2, "big") + bytes(8), "the family needs 12"),
        (V2_SIGNATURE + bytes([0x21, 0x21]) + (12).to_bytes(2, "big") + bytes(12), "the family needs 36"),
        (V2_SIGNATURE + bytes([0x21, 0x11]) + (14).to_bytes(2, "big") + bytes(14), "TLV truncated"),
        (V2_SIGNATURE + bytes([0x21, 0x11]) + (16).to_bytes(2, "big") + bytes(12) + b"\x01\x00\x09\x00", "TLV longer"),
        (V2_SIGNATURE + bytes([0x21, 0x11]) + (65535).to_bytes(2, "big"), "exceeds the limit"),
        (b"\r\n\r\n\x00\r\nQUIT!" + bytes(8), "no v1 or v2 signature"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(data: bytes, complaint: str) -> None:
    with pytest.raises(ProxyHeaderError, match=complaint):
        parse(data)


@pytest.mark.parametrize("data", [V1_TCP4, encode_v2(("203.0.113.7", 40000), ("10.0.0.5", 6600))])
def test_every_truncation_of_a_valid_header_is_incomplete_not_accepted(data: bytes) -> None:
    for cut in range(1, len(data)):
        parser = ProxyHeaderParser()
        offset = 0
        while offset < cut:
            piece = data[offset : min(cut, offset + parser.bytes_wanted())]
            offset += len(piece)
            assert parser.feed(piece) is None


def test_feeding_past_what_was_asked_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="bytes_wanted"):
        ProxyHeaderParser().feed(V1_TCP4)


def test_one_byte_tells_a_proxy_header_from_a_collector() -> None:
    assert could_be_proxy_header(b"P")
    assert could_be_proxy_header(b"\r\n")
    assert could_be_proxy_header(V1_TCP4)
    assert could_be_proxy_header(V2_SIGNATURE + b"\x21")
    assert not could_be_proxy_header(b"\x00")  # a frame length
    assert not could_be_proxy_header(b"\x16\x03\x01")  # a TLS ClientHello
    assert not could_be_proxy_header(b"")
    assert not could_be_proxy_header(b"PROXX ")


def test_encoders_round_trip() -> None:
    assert parse(encode_v1(("203.0.113.7", 1), ("10.0.0.5", 6600)))[0].source == ("203.0.113.7", 1)
    assert parse(encode_v1(("2001:db8::7", 2), ("2001:db8::1", 6600)))[0].source == ("2001:db8::7", 2)
