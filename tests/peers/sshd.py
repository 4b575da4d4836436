"""OpenSSH's sshd on a loopback address, with its own config, host key and authorized key.

Everything lives in the directory the caller gives: the config, an Ed25519 host key and
a client key (both made by ssh-keygen), `authorized_keys`, the pid file and the log
(`-e`: sshd logs to stderr, which goes to the log file). The login user is whoever runs
the tests; as root that is root with `PermitRootLogin prohibit-password` (key only).

sshd refuses to start as root without its privilege-separation directory /run/sshd
(Debian's service unit creates it at boot, containers often lack it); as root we create
it, empty and mode 0755, exactly as that unit would.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.process import PeerProcess, free_port

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


@dataclass
class SshServer:
    host: str
    port: int
    user: str
    directory: Path
    client_key_pem: str
    host_key_type: str = ""
    host_key_fingerprint: str = ""
    process: PeerProcess | None = field(default=None, repr=False)

    @property
    def log_file(self) -> Path:
        return self.directory / "sshd.log"

    def log_since_start(self) -> str:
        """What sshd logged since it was last (re)started."""
        return self.process.log_text() if self.process is not None else ""

    def start(self) -> None:
        self.process = PeerProcess([SSHD, "-D", "-e", "-f", str(self.directory / "sshd_config")], self.log_file)
        self.process.wait_for_log(f"Server listening on {self.host} port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart_with_new_host_key(self) -> None:
        """Stop, replace the host key with a fresh one, start again on the same port."""
        self.stop()
        self._new_host_key()
        self.start()

    def _new_host_key(self) -> None:
        key = self.directory / "host_ed25519_key"
        for path in (key, key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        _keygen(key, "outpost-test-host")
        self.host_key_type = key.with_suffix(".pub").read_text().split()[0]
        self.host_key_fingerprint = host_key_fingerprint(key.with_suffix(".pub"))


def start_sshd(directory: Path, host: str) -> SshServer:
    """sshd listening on host:<free port>, ready to accept the returned client key."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755)
    client_key = directory / "client_ed25519_key"
    _keygen(client_key, "outpost-test-client")
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port(host)
    (directory / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {host}:{port}",
                f"HostKey {directory / 'host_ed25519_key'}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "MaxStartups 100",
                "",
            ]
        )
    )
    server = SshServer(
        host=host,
        port=port,
        user=getpass.getuser(),
        directory=directory,
        client_key_pem=client_key.read_text(),
    )
    server._new_host_key()
    server.start()
    return server


def host_key_fingerprint(public_key: Path) -> str:
    """ "SHA256:..." as `ssh-keygen -l` prints it."""
    output = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key)], check=True, capture_output=True, text=True
    ).stdout
    return output.split()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
