"""An HTTP server, optionally over TLS, with a known Server header and page title.

A `ThreadingHTTPServer` in a daemon thread, so it serves whichever event loop (or none)
the test runs. With TLS the handshake happens in the connection's own thread, not in
accept(): a client that connects and stays silent, or speaks plain HTTP to the TLS port
(as discovery does when it sniffs an unknown port), never blocks other connections.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.tls_certs import TestPki

SERVER_HEADER = "outpost-test-http/1.0"
TITLE = "Outpost test page"
HANDSHAKE_TIMEOUT = 5.0


@dataclass
class WebServer:
    host: str
    port: int
    server_header: str
    title: str
    tls: bool
    _server: ThreadingHTTPServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def set_title(self, title: str) -> None:
        """Serve pages with this <title> from the next request on ("" : an empty one)."""
        self.title = title
        self._server.title = title

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
        super().setup()

    def version_string(self) -> str:
        return self.server.server_header

    def do_GET(self) -> None:
        body = f"<!doctype html><html><head><title>{self.server.title}</title></head><body>hi</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on responses, not on access logs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], server_header: str, title: str, tls: ssl.SSLContext | None) -> None:
        self.server_header = server_header
        self.title = title
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is None:
            return sock, address
        try:
            return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address
        except OSError:  # the client is already gone (a scanner that reset the connection)
            sock.close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes and reset connections are expected from a scanner."""


def start_web_server(
    host: str, *, pki: TestPki | None = None, server_header: str = SERVER_HEADER, title: str = TITLE
) -> WebServer:
    """HTTP (or HTTPS with `pki`'s server certificate) on host:<port 0>, serving in a thread."""
    context = None
    if pki is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert_file, pki.key_file)
    server = _Server((host, 0), server_header, title, context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return WebServer(host, server.server_address[1], server_header, title, pki is not None, server, thread)
