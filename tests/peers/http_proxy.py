"""tinyproxy, a real forwarding HTTP proxy, on 127.0.0.1:<free port> (Debian package tinyproxy).

It logs every request it serves (`CONNECT 127.0.0.1:PORT` for a tunnel); `requests()` reads
them back, so a test can say what went through it. With `username`, it demands Basic
Proxy-Authorization. CONNECT is allowed to every port (no ConnectPort line: tinyproxy's
own default config limits tunnels to 443 and 563, as many corporate proxies do).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers.process import PeerProcess, free_port, port_accepts, wait_until

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


@dataclass
class HttpProxy:
    directory: Path
    username: str = ""
    password: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    process: PeerProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        userinfo = f"{self.username}:{self.password}@" if self.username else ""
        return f"http://{userinfo}{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "tinyproxy.log"

    def start(self) -> HttpProxy:
        if not Path(TINYPROXY).exists():
            pytest.fail("tinyproxy is not installed: `make system-deps` installs it (Debian package tinyproxy)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port(self.host)
        config = [
            f"Port {self.port}",
            f"Listen {self.host}",
            "Timeout 120",
            "MaxClients 100",
            "LogLevel Connect",
            f'LogFile "{self.log_file}"',
            "DisableViaHeader Yes",
        ]
        if self.username:
            config.append(f"BasicAuth {self.username} {self.password}")
        (self.directory / "tinyproxy.conf").write_text("\n".join(config) + "\n")
        self.process = PeerProcess(
            [TINYPROXY, "-d", "-c", str(self.directory / "tinyproxy.conf")], self.directory / "tinyproxy.out"
        )
        wait_until(lambda: port_accepts(self.host, self.port), f"tinyproxy on {self.host}:{self.port}")
        return self

    def requests(self) -> list[str]:
        """The request lines it served, e.g. 'CONNECT 127.0.0.1:6600 HTTP/1.1'."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return re.findall(r"Request \(file descriptor \d+\): (.+)", text)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
