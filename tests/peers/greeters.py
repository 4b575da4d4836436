"""Loopback servers that talk like real ones, for service recognition: greeters, HTTP, Redis, silence.

Each listener is a thread-served socket (so nmap, run as a child process, can scan it as
well as the collector's engine in the test's own event loop):

- a *greeter* sends its greeting at once (SMTP, FTP, POP3, IMAP, MySQL, SSH speak first),
  then reads what the client says and answers each line with `reply` until it leaves;
- `redis` answers inline commands one line at a time as Redis does, and hangs up on a
  line that looks like an HTTP header (Redis >= 3.2.7 treats "Host:" as an attack);
- `http` answers any request with a small page and closes;
- `silent` accepts and never says a word (until the client leaves).

`close()` stops every listener and waits for its threads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

SMTP_GREETING = b"220 mail.example ESMTP Postfix\r\n"
FTP_GREETING = b"220 (vsFTPd 3.0.3)\r\n"
POP3_GREETING = b"+OK Dovecot ready.\r\n"
IMAP_GREETING = (
    b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"
)
SSH_GREETING = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n"
HTTP_RESPONSE = (
    b"HTTP/1.0 200 OK\r\nServer: nginx/1.18.0 (Ubuntu)\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
    b"<html><head><title>Greeters</title></head><body>hello</body></html>\n"
)
IDLE_SECONDS = 10.0


def mysql_handshake(version: bytes = b"8.0.35-0ubuntu0.22.04.1") -> bytes:
    """A MySQL protocol-10 initial handshake packet, as a server sends it on connect."""
    payload = (
        b"\x0a"
        + version
        + b"\x00"
        + struct.pack("<I", 12)
        + b"abcdefgh\x00"
        + struct.pack("<H", 0xFFFF)
        + b"\xff"
        + struct.pack("<H", 2)
        + struct.pack("<H", 0xDFFF)
        + b"\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + b"caching_sha2_password\x00"
    )
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


Conversation = Callable[[socket.socket], None]


class Greeters:
    """Listeners on loopback; each `add_*` returns the bound port."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def greeter(
        self, host: str, greeting: bytes, reply: bytes = b"500 unrecognised command\r\n", *, port: int = 0
    ) -> int:
        def talk(conn: socket.socket) -> None:
            conn.sendall(greeting)
            for _ in _LineReader(conn):
                conn.sendall(reply)

        return self._listen(host, talk, port)

    def redis(self, host: str) -> int:
        def talk(conn: socket.socket) -> None:
            for line in _LineReader(conn):
                words = line.split()
                if not words:
                    continue
                command = words[0].upper()
                if command.endswith(b":"):
                    return  # "Possible SECURITY ATTACK detected": Redis hangs up
                if command == b"GET" and len(words) != 2:
                    conn.sendall(b"-ERR wrong number of arguments for 'get' command\r\n")
                elif command == b"PING":
                    conn.sendall(b"+PONG\r\n")
                else:
                    conn.sendall(b"-ERR unknown command '" + words[0] + b"'\r\n")

        return self._listen(host, talk)

    def http(self, host: str, response: bytes = HTTP_RESPONSE, *, port: int = 0) -> int:
        def talk(conn: socket.socket) -> None:
            data = b""
            while b"\r\n\r\n" not in data and b"\n\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            conn.sendall(response)

        return self._listen(host, talk, port)

    def silent(self, host: str) -> int:
        def talk(conn: socket.socket) -> None:
            for _ in _LineReader(conn):
                pass

        return self._listen(host, talk)

    def close(self) -> None:
        self._stopping.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def _listen(self, host: str, talk: Conversation, port: int = 0) -> int:
        """Serve `talk` on (host, port); port 0 lets the kernel pick (a given port lets a test
        put another server where one was)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.settimeout(0.2)
        self._sockets.append(sock)
        thread = threading.Thread(target=self._accept, args=(sock, talk), daemon=True)
        thread.start()
        self._threads.append(thread)
        return int(sock.getsockname()[1])

    def _accept(self, sock: socket.socket, talk: Conversation) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, talk), daemon=True).start()

    def _serve(self, conn: socket.socket, talk: Conversation) -> None:
        conn.settimeout(IDLE_SECONDS)
        with contextlib.suppress(OSError), conn:
            talk(conn)


class _LineReader:
    """The client's lines as they arrive, until it leaves (or stays idle too long)."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._buffer = b""

    def __iter__(self) -> _LineReader:
        return self

    def __next__(self) -> bytes:
        while b"\n" not in self._buffer:
            try:
                chunk = self._conn.recv(4096)
            except OSError:
                raise StopIteration from None
            if not chunk:
                raise StopIteration
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r")
