"""nmap-service-probes: the parser, the PCRE rewriting, version templates, matching and probe order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.collector.discovery.pcre import UnsupportedRegex, literal_prefix, python_regex
from services.collector.discovery.service_probes import (
    DEFAULT_SERVICE_PROBES_FILE,
    ProbeDatabase,
    ServiceProbesError,
    load_service_probes,
    parse_service_probes,
    unescape_payload,
)
from tests.peers.greeters import (
    FTP_GREETING,
    HTTP_RESPONSE,
    IMAP_GREETING,
    POP3_GREETING,
    SMTP_GREETING,
    SSH_GREETING,
    mysql_handshake,
)

SAMPLE = Path(__file__).parent / "data" / "service-probes-sample"


@pytest.fixture(scope="module")
def sample() -> ProbeDatabase:
    return load_service_probes(str(SAMPLE))


@pytest.fixture(scope="module")
def nmap() -> ProbeDatabase:
    if not Path(DEFAULT_SERVICE_PROBES_FILE).exists():
        pytest.skip(f"{DEFAULT_SERVICE_PROBES_FILE} is absent (Debian package nmap)")
    return load_service_probes(DEFAULT_SERVICE_PROBES_FILE)


# --- the file format --------------------------------------------------------------------------


def test_probes_are_read_with_every_directive(sample: ProbeDatabase) -> None:
    assert [p.name for p in sample.probes] == ["NULL", "GetRequest", "Rare", "Medium"]
    null = sample.probe("NULL")
    assert null is not None
    assert (null.payload, null.total_wait_ms, null.tcpwrapped_ms, null.rarity) == (b"", 6000, 3000, 1)
    get = sample.probe("GetRequest")
    assert get is not None
    assert get.payload == b"GET / HTTP/1.0\r\n\r\n"
    assert (get.rarity, get.total_wait_ms) == (1, 5500)
    assert get.ports == frozenset({80, 81, 82, 8080})
    assert get.sslports == frozenset({443})
    rare = sample.probe("Rare")
    assert rare is not None
    assert (rare.payload, rare.rarity, rare.fallbacks) == (b"\x01\x02\\x\x00", 8, ("GetRequest",))
    assert sample.excluded_ports == frozenset({9100, 9101, 9102})
    assert sample.pattern_count == 13


def test_match_lines_keep_service_flags_templates_and_cpes(sample: ProbeDatabase) -> None:
    null = sample.probe("NULL")
    assert null is not None
    ftp, smtp = null.matches[0], null.matches[1]
    assert (ftp.service, ftp.flags, ftp.soft) == ("ftp", "", False)
    assert ftp.templates == {"product": "vsftpd", "version": "$1", "os": "Unix"}
    assert ftp.cpes == ("cpe:/a:vsftpd:vsftpd:$1",)
    assert smtp.templates == {"product": "Postfix smtpd", "hostname": "$1"}
    assert smtp.cpes == ("cpe:/a:postfix:postfix",)  # the trailing "a" flag is not part of it
    assert null.matches[-1].soft and null.matches[-1].templates == {}
    assert null.matches[8].flags == "s"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("match x m|a|\n", "before the first Probe"),
        ("Probe TCP X q|a|\nbogus 1\n", "unknown directive"),
        ("Probe TCP X q|a|\nrarity high\n", "line 2"),
        ("Probe TCP X q|a|\nmatch x m|abc\n", "line 2"),
        ("Probe TCP X q|a|\nmatch x m|a| z/what/\n", "unknown version field"),
        ("Probe TCP X q|a|\nports 70000\n", "outside 0-65535"),
        ("Probe SCTP X q|a|\n", "malformed Probe"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(text: str, error: str) -> None:
    with pytest.raises(ServiceProbesError, match=error):
        parse_service_probes(text)


def test_payload_escapes_are_c_style() -> None:
    assert unescape_payload(r"\r\n\t\0\x41\\\|z") == b"\r\n\t\x00A\\|z"


# --- PCRE -> Python ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pcre", "python"),
    [
        (r"^abc\z", r"^abc\Z"),
        (r"^abc\Z", r"^abc(?=\n?\Z)"),
        (r"a\hb", r"a[ \t]b"),
        (r"[\h-]", r"[ \t-]"),
        (r"\e\x{41}\xA", r"\x1b\x41\x0a"),
        (r"\cA", r"\x01"),
        (r"[[:digit:][:upper:]]", r"[0-9A-Z]"),
        (r"(?<v>\d)\k<v>", r"(?P<v>\d)(?P=v)"),
        (r"(?'v'\d)", r"(?P<v>\d)"),
        (r"(?<=a)b(?<!c)", r"(?<=a)b(?<!c)"),
        (r"a{,2}b{1,3}", r"a\{,2\}b{1,3}"),
        (r"[a[&~]", r"[a\[\&\~]"),
        (r"[]a]", r"[\]a]"),
        (r"\Qa.b\E", r"a\.b"),
        (r"^(?i)x", r"(?i)^x"),
        (r"(?:a|b)++(?>c)", r"(?:a|b)++(?>c)"),
    ],
)
def test_pcre_constructs_are_rewritten_for_python(pcre: str, python: str) -> None:
    assert python_regex(pcre) == python
    re.compile(python.encode("latin-1"))


@pytest.mark.parametrize("pcre", [r"a(?R)", r"(a)(?1)", r"\p{L}", r"a\Kb", r"a(?i)b", r"[[:nonsense:]]", "[abc"])
def test_constructs_python_lacks_are_refused_not_guessed(pcre: str) -> None:
    with pytest.raises(UnsupportedRegex):
        python_regex(pcre)


def test_patterns_python_cannot_take_are_counted(sample: ProbeDatabase) -> None:
    report = sample.check_patterns()
    assert (report.patterns, report.failed) == (13, 2)
    assert any("(broken)" in failure for failure in report.first_failures)
    assert any("(mid)" in failure for failure in report.first_failures)
    null = sample.probe("NULL")
    assert null is not None
    assert sample.match_response(null, b"ab") is None  # an uncompiled pattern never matches


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"^220 \(vsFTPd", b"220 (vsFTPd"),
        (r"^\0\0\x0a\r\n", b"\x00\x00\n\r\n"),
        (r"^abc?d", b"ab"),
        (r"^ab*", b"a"),
        (r"^ab+", b"ab"),
        (r"^ab{2}", b"a"),
        (r"^a(b)", b"a"),
        (r"^a|b", b""),
        (r"abc", b""),
        (r"^\d", b""),
        (r"^\x4", b""),
        (r"^\012", b""),
    ],
)
def test_the_literal_prefix_is_what_every_match_starts_with(pattern: str, prefix: bytes) -> None:
    assert literal_prefix(pattern) == prefix


@given(st.binary(max_size=12), st.sampled_from([r"^ab?c", r"^a\x00b+", r"^(?:ab|c)", r"^a\.b*c", r"^ab{0,2}c"]))
def test_the_prefix_never_rules_out_a_real_match(data: bytes, pattern: str) -> None:
    compiled = re.compile(python_regex(pattern).encode("latin-1"), re.DOTALL)
    if compiled.search(data):
        assert data.startswith(literal_prefix(pattern))


# --- templates and matching ------------------------------------------------------------------------


def test_a_match_fills_its_templates(sample: ProbeDatabase) -> None:
    null = sample.probe("NULL")
    assert null is not None
    found = sample.match_response(null, b"220 (vsFTPd 3.0.3)\r\n")
    assert found is not None
    assert (found.service, found.product, found.version, found.os) == ("ftp", "vsftpd", "3.0.3", "Unix")
    assert found.cpes == ("cpe:/a:vsftpd:vsftpd:3.0.3",)
    assert not found.soft


def test_subst_printable_and_integer_substitutions(sample: ProbeDatabase) -> None:
    null = sample.probe("NULL")
    assert null is not None
    found = sample.match_response(null, b"a_b_c is a_b_c")
    assert found is not None and found.product == "a.b.c"
    binary = sample.match_response(null, b"\x00\x00\x01\x02")
    assert binary is not None and binary.version == str(0x0102)
    assert sample.match_response(null, b"hello A") is not None
    assert sample.match_response(null, b"hello A\n") is None  # \z: the very end


def test_a_hard_match_wins_over_an_earlier_softmatch_and_fallbacks_count(sample: ProbeDatabase) -> None:
    null, get, rare = sample.probe("NULL"), sample.probe("GetRequest"), sample.probe("Rare")
    assert null is not None and get is not None and rare is not None
    postfix = sample.match_response(null, b"220 mail.example ESMTP Postfix\r\n")
    assert postfix is not None and (postfix.service, postfix.hostname, postfix.soft) == ("smtp", "mail.example", False)
    soft = sample.match_response(null, b"220 mail.example ESMTP\r\n")
    assert soft is not None and (soft.service, soft.soft, soft.product) == ("smtp", True, "")
    nginx = HTTP_RESPONSE.replace(b"nginx/1.18.0 (Ubuntu)", b"nginx/1.18.0")
    # Rare falls back to GetRequest (named) and to NULL (every TCP probe does).
    found = sample.match_response(rare, nginx)
    assert found is not None and (found.service, found.product, found.version) == ("http", "nginx", "1.18.0")
    ftp = sample.match_response(rare, FTP_GREETING)
    assert ftp is not None and ftp.service == "ftp"
    assert sample.match_response(get, b"-ERR unknown command") is None  # fallbacks go one way


def test_probe_order_is_listed_ports_first_then_by_rarity(sample: ProbeDatabase) -> None:
    names = [p.name for p in sample.tcp_sequence(6379, intensity=7)]
    assert names == ["Rare", "GetRequest", "Medium"]  # Rare is listed for 6379, whatever its rarity
    assert [p.name for p in sample.tcp_sequence(8081, intensity=4)] == ["GetRequest"]
    assert [p.name for p in sample.tcp_sequence(443, intensity=0, tls=True)] == ["GetRequest"]
    assert [p.name for p in sample.tcp_sequence(1234, intensity=0)] == []


# --- the real file -------------------------------------------------------------------------------------


def test_the_installed_nmap_file_parses_and_python_takes_its_patterns(nmap: ProbeDatabase) -> None:
    assert len(nmap.probes) > 100
    assert nmap.pattern_count > 10_000
    report = nmap.check_patterns()
    # nmap 7.93: every pattern compiles after rewriting; allow a few for other versions.
    assert report.failed <= report.patterns // 1000, report.first_failures


@pytest.mark.parametrize(
    ("greeting", "service", "product", "version"),
    [
        (SMTP_GREETING, "smtp", "Postfix smtpd", ""),
        (FTP_GREETING, "ftp", "vsftpd", "3.0.3"),
        (POP3_GREETING, "pop3", "Dovecot pop3d", ""),
        (IMAP_GREETING, "imap", "Dovecot imapd", ""),
        (mysql_handshake(), "mysql", "MySQL", "8.0.35-0ubuntu0.22.04.1"),
        (SSH_GREETING, "ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.6"),
    ],
)
def test_real_greetings_are_recognised_by_nmaps_patterns(
    nmap: ProbeDatabase, greeting: bytes, service: str, product: str, version: str
) -> None:
    null = nmap.probe("NULL")
    assert null is not None
    found = nmap.match_response(null, greeting)
    assert found is not None
    assert (found.service, found.product, found.version, found.soft) == (service, product, version, False)


def test_an_http_answer_is_recognised_by_the_get_request_patterns(nmap: ProbeDatabase) -> None:
    get = nmap.probe("GetRequest")
    assert get is not None
    found = nmap.match_response(get, HTTP_RESPONSE)
    assert found is not None
    assert (found.service, found.product, found.version) == ("http", "nginx", "1.18.0")
