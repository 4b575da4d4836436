"""HTTP proxies for the collector's connections: chosen from HTTPS_PROXY/HTTP_PROXY/NO_PROXY, then tunnelled.

Every agent connection through a proxy is an HTTP CONNECT tunnel, whatever the transport:
the proxy learns only the gateway's host and port, and the envelopes stay sealed (and in
TLS, for the TLS schemes) end to end. A tunnel is what `HTTPS_PROXY` means for clients such
as curl, so the proxy is `https_proxy`/`HTTPS_PROXY` for every server URL, and
`http_proxy`/`HTTP_PROXY` when only that is set (a plain `ws://` or `http://` request
forwarded in absolute form would not survive a proxy: it drops the WebSocket upgrade).
Lower case wins over upper case, as in curl and urllib. `NO_PROXY` takes host names and
domain suffixes (`.example.org`, `example.org`), `host:port`, IP addresses, CIDR blocks
(`10.0.0.0/8`) and `*`. Only `http://` proxies (optionally with `user:password@`, sent
as Basic Proxy-Authorization); anything else ends the start with one clear line.

`ProxySettings.from_environ` is called once, in `app.py`; the route per server is fixed
for the life of the process and logged there, the proxy's credentials never.

The gRPC transport hands the same decision to gRPC core (`grpc.http_proxy`, which
CONNECTs too; `grpc.enable_http_proxy=0` for a direct server, so gRPC's own reading of the
environment cannot disagree). The TCP transport and aiohttp (WebSocket, HTTP polling,
through `http_tunnel.TunnelConnector`) use `open_tunnel` here. This module imports
neither aiohttp nor grpc: a TCP-only collector loads neither.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

MAX_RESPONSE_HEAD = 16 * 1024
CONNECT_TIMEOUT = 15.0


class ProxyError(Exception):
    """The proxy refused the tunnel or could not be reached; the message says which."""


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    username: str = ""
    password: str = ""

    @property
    def display(self) -> str:
        """For logs: never the credentials."""
        return f"http://{self.host}:{self.port}" + (" (with credentials)" if self.username else "")

    @property
    def url(self) -> str:
        """With the credentials: for gRPC core's `grpc.http_proxy` only, never for a log."""
        userinfo = ""
        if self.username:
            userinfo = urllib.parse.quote(self.username, safe="") + ":" + urllib.parse.quote(self.password, safe="")
            userinfo += "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{userinfo}{host}:{self.port}"

    def authorization(self) -> str | None:
        if not self.username:
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def parse_proxy(text: str, variable: str) -> Proxy:
    """`http://[user:password@]host[:port]` (scheme optional); ValueError naming the variable, not the value."""
    if "://" not in text:
        text = "http://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "http":
        raise ValueError(f"{variable}: only http:// proxies are supported (the tunnel to the gateway is CONNECT)")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"{variable}: not a proxy URL (bad port)") from exc
    if not parts.hostname:
        raise ValueError(f"{variable}: not a proxy URL (no host)")
    return Proxy(
        parts.hostname,
        port,
        urllib.parse.unquote(parts.username or ""),
        urllib.parse.unquote(parts.password or ""),
    )


@dataclass(frozen=True)
class ProxySettings:
    proxy: Proxy | None = None
    no_proxy: str = ""
    variable: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxySettings:
        for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
            if environ.get(variable, "").strip():
                proxy = parse_proxy(environ[variable].strip(), variable)
                no_proxy = environ.get("no_proxy", "") or environ.get("NO_PROXY", "")
                return cls(proxy, no_proxy.strip(), variable)
        return cls()

    def route(self, host: str, port: int) -> Proxy | None:
        """The proxy to tunnel through to host:port, or None to connect directly."""
        if self.proxy is None or bypassed(host, port, self.no_proxy):
            return None
        return self.proxy


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """True when NO_PROXY covers host:port: `*`, a name or domain suffix, `name:port`, an IP address or a CIDR.

    The rules of curl and urllib (`example.org` and `.example.org` both cover
    `gw.example.org`; case-insensitive), plus CIDR blocks as curl 7.86+ takes them.
    """
    host = host.strip("[]").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
                continue
            except ValueError:
                pass
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


async def open_tunnel(proxy: Proxy, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A connected, non-blocking socket through `proxy` to host:port (HTTP CONNECT), nothing read past the reply.

    The reply is read byte by byte up to its blank line, so whatever the server sends
    first stays in the socket for the transport. Raises OSError when the proxy cannot be
    reached, ProxyError when it answers anything but 2xx.
    """
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
                break
            except OSError as exc:
                sock.close()
                error = exc
        else:
            raise error or OSError(f"cannot resolve proxy {proxy.host}")
        try:
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
            if (authorization := proxy.authorization()) is not None:
                head += f"Proxy-Authorization: {authorization}\r\n"
            await loop.sock_sendall(sock, (head + "\r\n").encode())
            reply = bytearray()
            while not reply.endswith(b"\r\n\r\n"):
                byte = await loop.sock_recv(sock, 1)
                if not byte:
                    raise ProxyError(f"proxy {proxy.display} closed the connection during CONNECT {target}")
                reply += byte
                if len(reply) > MAX_RESPONSE_HEAD:
                    raise ProxyError(f"proxy {proxy.display}: reply to CONNECT larger than {MAX_RESPONSE_HEAD} bytes")
            status = reply.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status.split(" ", 2)
            if len(fields) < 2 or not fields[1].startswith("2"):
                raise ProxyError(f"proxy {proxy.display} refused CONNECT {target}: {status}")
        except BaseException:
            sock.close()
            raise
    return sock
