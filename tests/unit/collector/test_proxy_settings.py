"""Which proxy a collector tunnels through for a server: HTTPS_PROXY/HTTP_PROXY/NO_PROXY (transport.proxy)."""

from __future__ import annotations

import base64

import pytest

from services.collector.transport.proxy import Proxy, ProxySettings, bypassed, parse_proxy


def test_no_proxy_variables_means_direct() -> None:
    assert ProxySettings.from_environ({}).route("gw.example", 6600) is None


@pytest.mark.parametrize(
    ("environ", "expected", "variable"),
    [
        ({"HTTPS_PROXY": "http://p1:3128"}, "p1", "HTTPS_PROXY"),
        ({"https_proxy": "http://p2:3128", "HTTPS_PROXY": "http://p1:3128"}, "p2", "https_proxy"),
        ({"HTTP_PROXY": "http://p3:3128"}, "p3", "HTTP_PROXY"),  # only HTTP_PROXY: still tunnelled through it
        ({"HTTP_PROXY": "http://p3:3128", "HTTPS_PROXY": "http://p1:3128"}, "p1", "HTTPS_PROXY"),
        ({"HTTPS_PROXY": "p4:8080"}, "p4", "HTTPS_PROXY"),  # no scheme: http://
        ({"HTTPS_PROXY": "  "}, None, ""),
    ],
)
def test_the_proxy_comes_from_https_proxy_then_http_proxy_lower_case_first(
    environ: dict[str, str], expected: str | None, variable: str
) -> None:
    settings = ProxySettings.from_environ(environ)
    route = settings.route("gw.example", 8080)
    assert (route.host if route else None) == expected
    assert settings.variable == variable


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("gw.example", 6600, "gw.example", True),
        ("gw.example", 6600, ".example", True),
        ("gw.example", 6600, "example", True),
        ("gw.example", 6600, "other.example", False),
        ("gw.example", 6600, "gw.example:6600", True),
        ("gw.example", 6600, "gw.example:6601", False),
        ("gw.example", 6600, "*", True),
        ("10.1.2.3", 6600, "10.0.0.0/8", True),
        ("10.1.2.3", 6600, "192.168.0.0/16, 10.1.2.0/24", True),
        ("11.1.2.3", 6600, "10.0.0.0/8", False),
        ("127.0.0.1", 6600, "127.0.0.1", True),
        ("::1", 6600, "::1/128", True),
        ("gw.example", 6600, "", False),
    ],
)
def test_no_proxy_takes_names_suffixes_ports_cidrs_and_star(
    host: str, port: int, no_proxy: str, expected: bool
) -> None:
    assert bypassed(host, port, no_proxy) is expected
    settings = ProxySettings.from_environ({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": no_proxy})
    assert (settings.route(host, port) is None) is expected


def test_lower_case_no_proxy_wins() -> None:
    settings = ProxySettings.from_environ(
        {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "gw.example", "NO_PROXY": "other.example"}
    )
    assert settings.route("gw.example", 1) is None
    assert settings.route("other.example", 1) is not None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("https://proxy:3128", "only http:// proxies"),
        ("socks5://proxy:1080", "only http:// proxies"),
        ("http://proxy:notaport", "bad port"),
        ("http://:3128", "no host"),
    ],
)
def test_an_unusable_proxy_url_names_the_variable_not_the_value(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as raised:
        ProxySettings.from_environ({"HTTPS_PROXY": text.replace("proxy", "u:s3cret@proxy")})
    assert "HTTPS_PROXY" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_credentials_go_to_the_proxy_and_never_into_the_display() -> None:
    proxy = parse_proxy("http://us%40er:p%3Ass@proxy.example:3128", "HTTPS_PROXY")
    assert proxy == Proxy("proxy.example", 3128, "us@er", "p:ss")
    assert proxy.display == "http://proxy.example:3128 (with credentials)"
    assert "p:ss" not in proxy.display and "p%3Ass" not in proxy.display
    assert proxy.authorization() == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert proxy.url == "http://us%40er:p%3Ass@proxy.example:3128"
    assert parse_proxy("http://proxy.example", "HTTP_PROXY") == Proxy("proxy.example", 80)
    assert Proxy("::1", 3128).url == "http://[::1]:3128"
