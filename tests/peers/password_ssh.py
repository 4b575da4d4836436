"""An SSH server that takes a password (asyncssh, in the test's event loop).

OpenSSH would need a system account with a password to test password logins; this
peer accepts one user and password of our choosing instead, and runs each command in a
real local `sh -c`, so what it reports is what this host reports. Start it from an async
fixture; `stop()` closes the listener and every connection.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

import asyncssh

from tests.peers.process import free_port


class _PasswordServer(asyncssh.SSHServer):
    def __init__(self, username: str, password: str) -> None:
        self._username, self._password = username, password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return secrets.compare_digest(username, self._username) and secrets.compare_digest(password, self._password)


async def _run_in_local_shell(process: asyncssh.SSHServerProcess[str]) -> None:
    command = process.command or "true"
    shell = await asyncio.create_subprocess_exec(
        "sh", "-c", command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await shell.communicate()
    process.stdout.write(stdout.decode(errors="replace"))
    process.exit(shell.returncode or 0)


@dataclass
class PasswordSshServer:
    host: str
    port: int
    username: str
    password: str
    host_key_fingerprint: str
    _server: asyncssh.SSHAcceptor = field(repr=False)

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_password_ssh_server(host: str, username: str = "auditor") -> PasswordSshServer:
    password = secrets.token_urlsafe(12)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    port = free_port(host)
    server = await asyncssh.create_server(
        lambda: _PasswordServer(username, password),
        host,
        port,
        server_host_keys=[host_key],
        process_factory=_run_in_local_shell,
        encoding="utf-8",
    )
    return PasswordSshServer(host, port, username, password, host_key.get_fingerprint("sha256"), server)
