"""Parsers of what servers send: SSH identification, HTTP responses, titles, certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from services.collector.discovery.banners import (
    MAX_TITLE,
    dechunk,
    first_line,
    html_title,
    http_request,
    parse_certificate,
    parse_http_response,
    parse_ssh_identification,
)
from services.collector.discovery.model import HttpInfo, TlsInfo


def test_ssh_identification_is_the_ssh_line_even_after_other_lines() -> None:
    data = b"Welcome to the box\r\nSSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00\x01"
    assert parse_ssh_identification(data) == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    assert parse_ssh_identification(b"220 smtp.example ESMTP\r\n") is None


def test_http_status_server_and_title() -> None:
    response = (
        b"HTTP/1.1 403 Forbidden\r\nServer: nginx/1.25.3\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><TITLE lang='en'>\n  Access &amp; denied\n</TITLE></head></html>"
    )
    assert parse_http_response(response) == HttpInfo(status=403, server="nginx/1.25.3", title="Access & denied")


def test_http_without_server_or_title_and_with_bare_newlines() -> None:
    assert parse_http_response(b"HTTP/1.0 204 No Content\n\n") == HttpInfo(status=204, title="")


def test_a_page_read_without_a_title_is_measured_empty_and_a_cut_one_is_not_measured() -> None:
    page = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n<p>hi</p>\r\n"
    assert parse_http_response(page) == HttpInfo(status=200, title="")
    assert parse_http_response(page[:-5]) == HttpInfo(status=200, title=None)
    assert parse_http_response(b"HTTP/1.1 200 OK\r\nServer: x\r\n") == HttpInfo(status=200, server="x")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<p>\r\n"
    assert parse_http_response(chunked) == HttpInfo(status=200, title=None)
    assert parse_http_response(chunked + b"0\r\n\r\n") == HttpInfo(status=200, title="")


def test_a_truncated_title_is_kept_and_bounded() -> None:
    body = b"<title>" + b"x" * 10_000
    assert html_title(body) == "x" * MAX_TITLE


def test_the_title_is_decoded_with_the_declared_charset() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<title>Caf\xe9</title>"
    info = parse_http_response(response)
    assert info is not None and info.title == "Café"


def test_a_chunked_body_is_dechunked_before_looking_for_the_title() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n<titl\r\n10;ext=1\r\ne>Chunked page</\r\n7\r\ntitle>\n\r\n0\r\n\r\n"
    )
    info = parse_http_response(response)
    assert info is not None and info.title == "Chunked page"
    assert dechunk(b"3\r\nabc\r\nzz") == b"abc"


def test_non_http_is_not_http() -> None:
    assert parse_http_response(b"SSH-2.0-x\r\n") is None
    assert parse_http_response(b"HTTP/1.1 abc\r\n\r\n") is None
    assert parse_http_response(b"") is None


@given(st.binary(max_size=2000))
def test_parsers_never_raise_on_arbitrary_bytes(data: bytes) -> None:
    parse_http_response(b"HTTP/1.1 200 OK\r\n" + data)
    parse_http_response(data)
    parse_ssh_identification(data)
    first_line(data)
    dechunk(data)


def test_first_line_is_printable_and_bounded() -> None:
    assert first_line(b"\r\n220 mail\x07 ready\r\nmore") == "220 mail  ready"
    assert len(first_line(b"a" * 1000)) == 256


def test_the_http_request_names_the_host_and_port() -> None:
    assert http_request("10.0.0.5", 8080).startswith(b"GET / HTTP/1.1\r\nHost: 10.0.0.5:8080\r\n")
    assert b"Host: [2001:db8::1]:443\r\n" in http_request("2001:db8::1", 443)


def test_certificate_subject_issuer_expiry_and_sans() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-1.lab.test")]))
        .issuer_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA"),
                ]
            )
        )
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_after - dt.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("web-1.lab.test"), x509.IPAddress(ipaddress.ip_address("10.0.0.5"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)

    assert parse_certificate(der) == TlsInfo(
        subject="CN=web-1.lab.test",
        issuer="CN=Lab CA,O=Lab",
        not_after_unix=int(not_after.timestamp()),
        subject_alt_names=("web-1.lab.test", "10.0.0.5"),
    )
