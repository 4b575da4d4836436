"""What an open port says about itself: SSH identification, HTTP status/Server/<title>, TLS certificate.

Which conversation to try is chosen by port and then by listening:

- 22 (and the run's SSH port): read the SSH identification line.
- 80, 8080, 8000: `GET /` (then TLS if the answer is not HTTP).
- 443, 8443: TLS handshake without verification (this is discovery, not trust), read
  the certificate, then `GET /` over it (then plain HTTP if TLS fails).
- any other port: listen first for a moment; a server that speaks first (SSH, SMTP, FTP)
  is recognised by its first bytes. A silent one gets `GET /` on the same connection; if
  it answers with a TLS record, or hangs up without a word, TLS is tried on a new
  connection.

Every conversation has the probe timeout, reads at most `MAX_READ` bytes, and aborts its
connection when it ends. Parsers are pure functions of bytes, tested on their own.

With a `ServiceRecognizer` (nmap's fingerprints), what a conversation heard is then
matched against the nmap probe it stands for (a greeting: `NULL`; an answer to `GET /`:
`GetRequest`), and nmap's further probes are sent when that names nothing
(`recognition.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import ssl
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from services.collector.discovery.model import HttpInfo, PortObservation, SshInfo, TlsInfo
from services.collector.discovery.recognition import (
    QUIET_SECONDS,
    TLS_PROBES,
    Heard,
    RecognitionStats,
    ServiceRecognizer,
)

MAX_READ = 64 * 1024
MAX_TITLE = 512
MAX_BANNER = 256
SNIFF_SECONDS = 0.3

SSH_PORTS = frozenset({22})
HTTP_PORTS = frozenset({80, 8080, 8000})
TLS_PORTS = frozenset({443, 8443})
WELL_KNOWN = {
    21: "ftp",
    22: "ssh",
    23: "telnet",
    25: "smtp",
    53: "domain",
    80: "http",
    110: "pop3",
    135: "msrpc",
    139: "netbios-ssn",
    143: "imap",
    161: "snmp",
    389: "ldap",
    443: "https",
    445: "microsoft-ds",
    465: "smtps",
    587: "submission",
    636: "ldaps",
    993: "imaps",
    995: "pop3s",
    1433: "ms-sql-s",
    1521: "oracle",
    3306: "mysql",
    3389: "ms-wbt-server",
    5432: "postgresql",
    5900: "vnc",
    6379: "redis",
    8000: "http-alt",
    8080: "http-proxy",
    8443: "https-alt",
}

_TITLE = re.compile(rb"<title[^>]*>(.*?)(?:</title\s*>|$)", re.IGNORECASE | re.DOTALL)
_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


# --- parsers -------------------------------------------------------------------------


def parse_ssh_identification(data: bytes) -> str | None:
    """The "SSH-2.0-..." line (RFC 4253 allows other lines before it); None if absent."""
    for line in data.split(b"\n"):
        if line.startswith(b"SSH-"):
            return _printable(line.rstrip(b"\r"))[:MAX_BANNER]
    return None


def first_line(data: bytes) -> str:
    """The first line a server sent, printable and bounded: a generic banner."""
    line = data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    return _printable(line)[:MAX_BANNER]


def parse_http_response(data: bytes) -> HttpInfo | None:
    """Status, Server header and <title> of a (possibly truncated) HTTP/1.x response.

    The title is "" when the page was read and has none (measured: the inventory drops an
    old title), and None when the body was cut short before a title could show up (a
    timeout mid-page: not measured, the inventory keeps what it had).
    """
    if not data.startswith(b"HTTP/"):
        return None
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = data.partition(b"\n\n")
    lines = head.decode("iso-8859-1").splitlines()
    status_fields = lines[0].split(None, 2)
    if len(status_fields) < 2 or not status_fields[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    complete = bool(separator) or len(data) >= MAX_READ
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, ended = _dechunk(body)
        complete = complete and ended
    elif headers.get("content-length", "").isdigit():
        complete = complete and len(body) >= int(headers["content-length"])
    title = html_title(body, _charset(headers.get("content-type", "")))
    return HttpInfo(
        status=int(status_fields[1]),
        server=_printable(headers.get("server", "").encode("iso-8859-1"))[:MAX_BANNER],
        title=title if title or complete or len(data) >= MAX_READ else None,
    )


def html_title(body: bytes, charset: str = "utf-8") -> str:
    match = _TITLE.search(body)
    if not match:
        return ""
    try:
        text = match.group(1).decode(charset, errors="replace")
    except LookupError:
        text = match.group(1).decode("utf-8", errors="replace")
    return " ".join(html.unescape(text).split())[:MAX_TITLE]


def dechunk(body: bytes) -> bytes:
    """The payload of a chunked body, as much of it as arrived."""
    return _dechunk(body)[0]


def _dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, and whether its last (zero-size) chunk arrived."""
    payload = bytearray()
    rest = body
    while rest:
        size_line, newline, rest = rest.partition(b"\n")
        if not newline:
            break
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            break
        if size == 0:
            return bytes(payload), True
        payload += rest[:size]
        rest = rest[size:].lstrip(b"\r\n")
    return bytes(payload), False


def parse_certificate(der: bytes) -> TlsInfo:
    """Subject, issuer, expiry and SANs (DNS names, IPs, URIs) of a DER certificate."""
    # cryptography's x509 costs the collector ~1.6 MiB: imported when a TLS port is met.
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    certificate = x509.load_der_x509_certificate(der)
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        san = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        assert isinstance(san, x509.SubjectAlternativeName)
        names.extend(san.get_values_for_type(x509.DNSName))
        names.extend(str(address) for address in san.get_values_for_type(x509.IPAddress))
        names.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    return TlsInfo(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_after_unix=int(certificate.not_valid_after_utc.timestamp()),
        subject_alt_names=tuple(names),
    )


def _charset(content_type: str) -> str:
    match = _CHARSET.search(content_type)
    return match.group(1) if match else "utf-8"


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return "".join(char if char.isprintable() else " " for char in text).strip()


def http_request(ip: str, port: int) -> bytes:
    host = f"[{ip}]" if ":" in ip else ip
    return (
        f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: outpost-discovery\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


# --- conversations ---------------------------------------------------------------------


@dataclass
class _Stream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@contextlib.asynccontextmanager
async def _connect(ip: str, port: int, tls: ssl.SSLContext | None = None) -> AsyncIterator[_Stream]:
    reader, writer = await asyncio.open_connection(ip, port, ssl=tls, limit=MAX_READ)
    try:
        yield _Stream(reader, writer)
    finally:
        writer.transport.abort()


async def _read_some(stream: _Stream, seconds: float) -> bytes:
    """Whatever arrives within `seconds` (b"" when nothing does)."""
    try:
        async with asyncio.timeout(seconds):
            return await stream.reader.read(MAX_READ)
    except (TimeoutError, OSError, ssl.SSLError):
        return b""


async def _read_response(stream: _Stream, already: bytes = b"", seconds: float | None = None) -> bytes:
    """Read until EOF, MAX_READ bytes or a complete <title>; keep what came on timeout.

    An answer that is not HTTP (a database's error line) often leaves the connection
    open: once its first bytes are in, a pause of `QUIET_SECONDS` ends the read.
    """
    data = bytearray(already)
    with contextlib.suppress(TimeoutError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
        async with asyncio.timeout(seconds):
            while len(data) < MAX_READ and b"</title" not in data.lower():
                quiet = QUIET_SECONDS if len(data) >= 5 and not data.startswith(b"HTTP/") else None
                try:
                    async with asyncio.timeout(quiet):
                        chunk = await stream.reader.read(MAX_READ - len(data))
                except TimeoutError:
                    if quiet is None:
                        raise
                    break
                if not chunk:
                    break
                data += chunk
    return bytes(data)


def unverified_tls_context() -> ssl.SSLContext:
    """TLS that accepts any certificate and old protocol versions: we read, we do not trust."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


_Found = tuple[PortObservation | None, Heard | None]
"""What a conversation learned with our own parsers, and what it heard for nmap's patterns."""


async def _ssh(ip: str, port: int, timeout: float) -> _Found:
    async with asyncio.timeout(timeout), _connect(ip, port) as stream:
        data = b""
        while len(data) < 8192 and not _has_identification(data):
            chunk = await stream.reader.read(8192 - len(data))
            if not chunk:
                break
            data += chunk
    heard = Heard(data, "NULL")
    line = parse_ssh_identification(data)
    if line is None:
        return None, heard
    return PortObservation(port=port, service="ssh", banner=line, ssh=SshInfo(banner=line)), heard


def _has_identification(data: bytes) -> bool:
    start = data.find(b"SSH-")
    return start >= 0 and b"\n" in data[start:]


async def _http(ip: str, port: int, timeout: float) -> _Found:
    async with asyncio.timeout(timeout), _connect(ip, port) as stream:
        stream.writer.write(http_request(ip, port))
        data = await _read_response(stream)
    return _classify(port, data), Heard(data, "GetRequest")


async def _tls(ip: str, port: int, timeout: float) -> _Found:
    """Handshake, read the certificate, then ask for / over the same connection."""
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(timeout):
            stream = await stack.enter_async_context(_connect(ip, port, unverified_tls_context()))
        ssl_object = stream.writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        tls: TlsInfo | None = None
        with contextlib.suppress(ValueError):
            tls = parse_certificate(der) if der else None
        response = b""
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            async with asyncio.timeout(timeout):
                stream.writer.write(http_request(ip, port))
                response = await _read_response(stream)
    http = parse_http_response(response)
    observation = PortObservation(
        port=port,
        service="https" if http else WELL_KNOWN.get(port, "tls"),
        banner=first_line(response) if http else "",
        http=http,
        tls=tls,
    )
    return observation, Heard(response, "GetRequest", tls=True)


async def _sniff(ip: str, port: int, timeout: float) -> tuple[_Found, bool]:
    """Listen, then try HTTP on the same connection; (what was found, worth trying TLS).

    TLS is worth a try when the server sent a TLS record, or hung up on `GET /` without a
    word; not when it stayed silent to the end (a TLS server answers a GET at once).
    """
    deadline = time.monotonic() + timeout
    async with contextlib.AsyncExitStack() as stack:
        async with asyncio.timeout(timeout):
            stream = await stack.enter_async_context(_connect(ip, port))
        data = await _read_some(stream, min(SNIFF_SECONDS, timeout / 2))
        probe = "NULL"
        if not data:
            probe = "GetRequest"
            stream.writer.write(http_request(ip, port))
            data = await _read_response(stream, seconds=max(deadline - time.monotonic(), 0.0))
    if data[:1] in (b"\x15", b"\x16"):  # a TLS alert/handshake record
        return (None, None), True
    if not data:
        return (None, None), time.monotonic() < deadline
    return (_classify(port, data), Heard(data, probe)), False


def _classify(port: int, data: bytes) -> PortObservation | None:
    if not data:
        return None
    http = parse_http_response(data)
    if http is not None:
        return PortObservation(port=port, service="http", banner=first_line(data), http=http)
    ssh_line = parse_ssh_identification(data)
    if ssh_line is not None:
        return PortObservation(port=port, service="ssh", banner=ssh_line, ssh=SshInfo(banner=ssh_line))
    return PortObservation(port=port, service=WELL_KNOWN.get(port, ""), banner=first_line(data))


async def grab_banner(
    ip: str,
    port: int,
    timeout: float,
    *,
    ssh_port: int = 22,
    recognizer: ServiceRecognizer | None = None,
    stats: RecognitionStats | None = None,
) -> PortObservation:
    """Talk to an open port; always returns an observation (with what could be learned).

    With a `recognizer`, what the conversation heard is matched against nmap's
    fingerprints, and nmap's request probes are sent when that was not enough
    (`recognition.py`); without one, the port is named by our parsers and its number.
    """
    started = time.monotonic()
    found: _Found = (None, None)
    sent = {"NULL"}
    try:
        if port in SSH_PORTS or port == ssh_port:
            found = await _ssh(ip, port, timeout)
        elif port in TLS_PORTS:
            sent |= {"GetRequest", *TLS_PROBES}
            found = await _attempt(_tls(ip, port, timeout)) or await _attempt(_http(ip, port, timeout)) or found
        elif port in HTTP_PORTS:
            sent.add("GetRequest")
            found = await _attempt(_http(ip, port, timeout)) or found
            if found[0] is None or found[0].http is None:
                sent |= TLS_PROBES
                found = await _attempt(_tls(ip, port, timeout)) or found
        else:
            found, try_tls = await _sniff(ip, port, timeout)
            if found[1] is None or found[1].probe == "GetRequest":
                sent.add("GetRequest")  # said on the sniffing connection when the server was silent
            if try_tls:
                sent |= TLS_PROBES
                found = await _attempt(_tls(ip, port, timeout)) or found
    except (TimeoutError, OSError, ssl.SSLError, EOFError):
        pass
    observation, heard = found
    if recognizer is not None:
        observation = await recognizer.recognise(
            ip,
            port,
            timeout=timeout,
            started=started,
            observation=observation,
            heard=heard,
            sent=frozenset(sent),
            stats=stats or RecognitionStats(),
        )
    return observation or PortObservation(port=port, service=WELL_KNOWN.get(port, ""))


async def _attempt(conversation: Coroutine[Any, Any, _Found]) -> _Found | None:
    """Await one conversation; a failure of the network kind is "nothing learned"."""
    try:
        return await conversation
    except (TimeoutError, OSError, ssl.SSLError, EOFError):
        return None
