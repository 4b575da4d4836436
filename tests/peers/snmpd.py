"""net-snmp's snmpd on a loopback address, and net-snmp's own `snmpget` to ask it (an oracle).

`-C` makes snmpd read only our config (a random v2c community for 127.0.0.1, v3 users
with SHA/AES and SHA-256/AES-256, a known sysName); its persistent state and log stay
in the given directory, and MIB loading is off on both ends, so nothing outside the
directory is read or written. Ready when the log says "NET-SNMP version".
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.process import PeerProcess, free_port

SNMPD = "/usr/sbin/snmpd"


@dataclass(frozen=True)
class SnmpV3User:
    name: str
    auth_protocol: str  # as net-snmp spells it: "SHA", "SHA-256"
    auth_key: str
    priv_protocol: str  # "AES", "AES-256"
    priv_key: str


@dataclass
class SnmpAgent:
    host: str
    port: int
    community: str
    users: dict[str, SnmpV3User]
    sys_name: str
    directory: Path
    process: PeerProcess | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client_env(self) -> dict[str, str]:
        """Environment for net-snmp's tools: no system config, no MIBs, state in our dir."""
        return {
            "SNMPCONFPATH": str(self.directory / "client"),
            "SNMP_PERSISTENT_DIR": str(self.directory / "client"),
            "MIBS": "",
            "MIBDIRS": str(self.directory / "client"),
        }


def start_snmpd(
    directory: Path,
    host: str,
    sys_name: str = "outpost-snmp-test",
    *,
    port: int | None = None,
    community: str | None = None,
    engine_id_text: str | None = None,
) -> SnmpAgent:
    """snmpd on `host`. `engine_id_text` fixes the engine id (snmpd builds it from the text),
    so with `port` and `community` a test can move one agent to another address."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "client").mkdir(exist_ok=True)
    community = community or "c-" + secrets.token_hex(8)
    users = {
        "sha-aes": SnmpV3User("outpost-sha", "SHA", secrets.token_hex(8), "AES", secrets.token_hex(8)),
        "sha256-aes256": SnmpV3User("outpost-sha256", "SHA-256", secrets.token_hex(8), "AES-256", secrets.token_hex(8)),
    }
    lines = [f"rocommunity {community} 127.0.0.1", f"sysName {sys_name}", "sysLocation outpost test lab"]
    if engine_id_text:
        lines.append(f"engineID {engine_id_text}")
    for user in users.values():
        lines.append(
            f'createUser {user.name} {user.auth_protocol} "{user.auth_key}" {user.priv_protocol} "{user.priv_key}"'
        )
        lines.append(f"rouser {user.name} priv")
    config = directory / "snmpd.conf"
    config.write_text("\n".join(lines) + "\n")
    port = port or free_port(host, kind=socket.SOCK_DGRAM)
    (directory / "snmpd.log").unlink(missing_ok=True)  # a restart waits for its own "ready" line
    agent = SnmpAgent(host, port, community, users, sys_name, directory)
    agent.process = PeerProcess(
        [
            SNMPD,
            "-f",
            "-Lf",
            str(directory / "snmpd.log"),
            "-C",
            "-c",
            str(config),
            "-p",
            str(directory / "snmpd.pid"),
            f"--persistentDir={directory / 'persist'}",
            f"udp:{host}:{port}",
        ],
        directory / "snmpd.out",
        env={"MIBS": "", "MIBDIRS": str(directory / "client")},
    )
    agent.process.wait_for_log("NET-SNMP version", path=directory / "snmpd.log")
    return agent


def snmpget(agent: SnmpAgent, oids: list[str], *, user: SnmpV3User | None = None) -> dict[str, tuple[str, str]]:
    """OID -> (type, value) as net-snmp's snmpget prints them with -On (v2c, or v3 with `user`)."""
    if user is None:
        auth = ["-v2c", "-c", agent.community]
    else:
        auth = ["-v3", "-l", "authPriv", "-u", user.name, "-a", user.auth_protocol, "-A", user.auth_key]
        auth += ["-x", user.priv_protocol, "-X", user.priv_key]
    output = subprocess.run(
        ["snmpget", *auth, "-On", "-t", "2", "-r", "1", f"{agent.host}:{agent.port}", *oids],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **agent.client_env()},
    ).stdout
    values: dict[str, tuple[str, str]] = {}
    for match in re.finditer(r"^\.([\d.]+) = (?:([\w-]+): )?(.*?)(?=^\.\d|\Z)", output, re.MULTILINE | re.DOTALL):
        values[match.group(1)] = (match.group(2) or "", match.group(3).strip())
    return values
