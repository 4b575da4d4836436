"""Gateway addresses as the operator writes them, parsed and checked once at start.

One URL names both the transport and whether it runs over TLS:

    grpc://host[:50061]          grpcs://host[:50061]          gRPC bidirectional stream
    ws://host[:8080][/v1/agent]  wss://host[:8080][/v1/agent]  WebSocket binary messages
    tcp://host[:6600]            tls://host[:6600]             length-prefixed TCP frames
    http://host[:8080][/v1/poll] https://host[:8080][/v1/poll] HTTP polling (POST)

A missing port takes the family's default (the TLS variants share it, since a gateway
serves TLS on the same listener; HTTP polling shares the WebSocket listener's port). A
WebSocket URL without a path gets `/v1/agent`, an HTTP polling URL `/v1/poll`.
Credentials, queries and fragments are refused: nothing secret belongs in an address.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Literal

Family = Literal["grpc", "ws", "tcp", "http"]

DEFAULT_PORTS: dict[Family, int] = {"grpc": 50061, "ws": 8080, "tcp": 6600, "http": 8080}
# Families whose URLs carry a path, and the path when the URL gives none.
DEFAULT_PATHS: dict[Family, str] = {"ws": "/v1/agent", "http": "/v1/poll"}

# scheme -> (transport family, TLS)
SCHEMES: dict[str, tuple[Family, bool]] = {
    "grpc": ("grpc", False),
    "grpcs": ("grpc", True),
    "ws": ("ws", False),
    "wss": ("ws", True),
    "tcp": ("tcp", False),
    "tls": ("tcp", True),
    "http": ("http", False),
    "https": ("http", True),
}


class ServerUrlError(ValueError):
    """A gateway address the collector cannot use; the message says why."""


@dataclass(frozen=True)
class ServerUrl:
    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def family(self) -> Family:
        return SCHEMES[self.scheme][0]

    @property
    def tls(self) -> bool:
        return SCHEMES[self.scheme][1]

    @property
    def hostport(self) -> str:
        """ "host:port" with IPv6 literals bracketed, as gRPC targets and URLs need."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.hostport}{self.path}"


def parse_server_url(text: str) -> ServerUrl:
    """Parse one `--server` value; raise `ServerUrlError` with an operator-readable reason."""
    raw = text.strip()
    if not raw:
        raise ServerUrlError("empty server URL")
    if "://" not in raw:
        raise ServerUrlError(f"server URL {raw!r} has no scheme; use one of {_scheme_list()}")
    parts = urllib.parse.urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ServerUrlError(f"server URL {raw!r} has unknown scheme {parts.scheme!r}; use one of {_scheme_list()}")
    family = SCHEMES[scheme][0]
    if parts.username is not None or parts.password is not None:
        raise ServerUrlError(
            f"server URL {_redact(parts)!r} must not carry credentials; give --username and --password-file instead"
        )
    if parts.query or parts.fragment:
        raise ServerUrlError(f"server URL {raw!r} must not have a query or fragment")
    host = parts.hostname
    if not host:
        raise ServerUrlError(f"server URL {raw!r} has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ServerUrlError(f"server URL {raw!r} has an invalid port") from exc
    if port == 0:
        raise ServerUrlError(f"server URL {raw!r} has port 0")
    path = parts.path
    if family in DEFAULT_PATHS:
        path = path if path not in ("", "/") else DEFAULT_PATHS[family]
    elif path not in ("", "/"):
        raise ServerUrlError(f"server URL {raw!r}: a {scheme}:// address takes no path")
    else:
        path = ""
    return ServerUrl(scheme=scheme, host=host, port=port or DEFAULT_PORTS[family], path=path)


def _scheme_list() -> str:
    return ", ".join(f"{s}://" for s in SCHEMES)


def _redact(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, "***@" + netloc, parts.path, "", ""))
