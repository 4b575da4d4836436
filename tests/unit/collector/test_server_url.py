from __future__ import annotations

import pytest

from services.collector.domain.server_url import ServerUrl, ServerUrlError, parse_server_url


@pytest.mark.parametrize(
    ("text", "expected", "family", "tls"),
    [
        ("grpc://gw-1", ServerUrl("grpc", "gw-1", 50061), "grpc", False),
        ("grpc://gw-1:7000", ServerUrl("grpc", "gw-1", 7000), "grpc", False),
        ("grpcs://gw-1", ServerUrl("grpcs", "gw-1", 50061), "grpc", True),
        ("grpc://gw-1/", ServerUrl("grpc", "gw-1", 50061), "grpc", False),
        ("ws://gw-1", ServerUrl("ws", "gw-1", 8080, "/v1/agent"), "ws", False),
        ("ws://gw-1:9000/", ServerUrl("ws", "gw-1", 9000, "/v1/agent"), "ws", False),
        ("wss://gw-1/edge/v1/agent", ServerUrl("wss", "gw-1", 8080, "/edge/v1/agent"), "ws", True),
        ("tcp://10.0.0.5", ServerUrl("tcp", "10.0.0.5", 6600), "tcp", False),
        ("tls://10.0.0.5:6601", ServerUrl("tls", "10.0.0.5", 6601), "tcp", True),
        ("TCP://GW-1", ServerUrl("tcp", "gw-1", 6600), "tcp", False),
        ("  grpc://gw-1  ", ServerUrl("grpc", "gw-1", 50061), "grpc", False),
        ("grpc://[::1]:50061", ServerUrl("grpc", "::1", 50061), "grpc", False),
        ("http://gw-1", ServerUrl("http", "gw-1", 8080, "/v1/poll"), "http", False),
        ("http://gw-1:9000/", ServerUrl("http", "gw-1", 9000, "/v1/poll"), "http", False),
        ("https://gw-1", ServerUrl("https", "gw-1", 8080, "/v1/poll"), "http", True),
        ("HTTPS://GW-1:8443/edge/v1/poll", ServerUrl("https", "gw-1", 8443, "/edge/v1/poll"), "http", True),
        ("http://[fd00::5]", ServerUrl("http", "fd00::5", 8080, "/v1/poll"), "http", False),
    ],
)
def test_every_scheme_parses_with_its_default_port_and_path(
    text: str, expected: ServerUrl, family: str, tls: bool
) -> None:
    url = parse_server_url(text)
    assert url == expected
    assert (url.family, url.tls) == (family, tls)


@pytest.mark.parametrize(
    ("url", "text"),
    [
        (ServerUrl("grpc", "gw-1", 50061), "grpc://gw-1:50061"),
        (ServerUrl("ws", "gw-1", 8080, "/v1/agent"), "ws://gw-1:8080/v1/agent"),
        (ServerUrl("tls", "::1", 6600), "tls://[::1]:6600"),
        (ServerUrl("https", "gw-1", 8080, "/v1/poll"), "https://gw-1:8080/v1/poll"),
        (ServerUrl("http", "::1", 8080, "/v1/poll"), "http://[::1]:8080/v1/poll"),
    ],
)
def test_a_parsed_url_prints_in_full_and_parses_back_to_itself(url: ServerUrl, text: str) -> None:
    assert str(url) == text
    assert parse_server_url(text) == url


def test_ipv6_hosts_are_bracketed_in_host_port() -> None:
    assert parse_server_url("tcp://[fd00::5]").hostport == "[fd00::5]:6600"
    assert parse_server_url("tcp://gw-1").hostport == "gw-1:6600"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("gw-1:50061", "no scheme"),
        ("ftp://gw-1", "unknown scheme 'ftp'"),
        ("udp://gw-1", "use one of grpc://, grpcs://, ws://, wss://, tcp://, tls://, http://, https://"),
        ("grpc://", "no host"),
        ("grpc://:50061", "no host"),
        ("grpc://gw-1:port", "invalid port"),
        ("grpc://gw-1:70000", "invalid port"),
        ("grpc://gw-1:0", "port 0"),
        ("tcp://gw-1/v1/agent", "takes no path"),
        ("grpc://gw-1/outpost", "takes no path"),
        ("ws://gw-1/v1/agent?token=x", "query or fragment"),
        ("ws://gw-1/v1/agent#x", "query or fragment"),
        ("https://gw-1/v1/poll?token=x", "query or fragment"),
        ("http://gw-1:0", "port 0"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ServerUrlError) as raised:
        parse_server_url(text)
    assert says in str(raised.value)


@pytest.mark.parametrize("text", ["wss://admin:hunter2@gw-1/v1/agent", "https://admin:hunter2@gw-1/v1/poll"])
def test_credentials_in_a_url_are_refused_without_echoing_the_password(text: str) -> None:
    with pytest.raises(ServerUrlError) as raised:
        parse_server_url(text)
    assert "must not carry credentials" in str(raised.value)
    assert "hunter2" not in str(raised.value)
