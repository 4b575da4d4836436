"""The SSH probe: the host key (trusted on first use), then a read-only audit with the job's login.

The host key is checked inside the key exchange, before any authentication
(`_TofuClient.validate_host_public_key`): a key that differs from the one recorded on
first use fails the handshake there, so the credential is never sent to a host that
may be an impostor; the probe reports `host_key_changed` and a note. Without a
credential the probe stops after the key exchange (key type, fingerprint, TOFU check).

With a credential it runs a few read-only commands in one `sh -c` over one channel
(with a timeout) and parses their output (`host_facts`). A command that fails (not
Linux, no `ip`) leaves its fact empty; fallbacks cover hosts without `nproc` or `ip`.
Nothing is read from ~/.ssh: no config, no agent, no default keys, no known_hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass

import asyncssh

from services.collector.discovery.host_facts import (
    build_interfaces,
    parse_cpu_count,
    parse_ip_addr,
    parse_ip_link,
    parse_meminfo,
    parse_os_release,
    parse_sys_class_net,
    parse_uptime,
)
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.model import HostAudit, SshCredential, SshInfo, SshOutcome

# Run together in one `sh -c` (one channel, one login-shell start: profile scripts on
# real hosts can take most of a second each). No single quotes in them: see audit_script.
COMMANDS = {
    "hostname": "hostname || cat /proc/sys/kernel/hostname",
    "os_release": "cat /etc/os-release || cat /usr/lib/os-release",
    "kernel": "uname -r",
    "uptime": "cat /proc/uptime",
    "nproc": "nproc || grep -c ^processor /proc/cpuinfo",
    "meminfo": "cat /proc/meminfo",
    "ip_link": "ip -o link",
    "ip_addr": "ip -o addr",
    "sys_class_net": "grep -H . /sys/class/net/*/address",
}


@dataclass
class _SeenKey:
    key_type: str = ""
    fingerprint: str = ""
    changed: bool = False
    recorded_fingerprint: str = ""


class _TofuClient(asyncssh.SSHClient):
    """Accepts the host key only on first use or when it matches the record."""

    def __init__(self, store: HostKeyStore, host: str, port: int, seen: _SeenKey) -> None:
        self._store, self._host, self._port, self._seen = store, host, port, seen

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self._seen.key_type = key.get_algorithm()
        self._seen.fingerprint = key.get_fingerprint("sha256")
        if self._store.check(self._host, self._port, self._seen.key_type, self._seen.fingerprint):
            return True
        record = self._store.lookup(self._host, self._port)
        self._seen.changed = True
        self._seen.recorded_fingerprint = record.fingerprint if record else ""
        return False


def _no_known_hosts(host: str, addr: str, port: int | None) -> tuple[list[str], list[str], list[str]]:
    """Trust no key by default, so every key goes through `_TofuClient`."""
    return [], [], []


async def probe_ssh(
    ip: str, port: int, credential: SshCredential | None, host_keys: HostKeyStore, timeout: float
) -> SshOutcome:
    """Key exchange (and with a credential, login and audit) against ip:port."""
    if credential is None:
        return await _host_key_only(ip, port, host_keys, timeout)
    seen = _SeenKey()
    try:
        options = _connection_options(credential, timeout)
    except (asyncssh.KeyImportError, ValueError):
        return SshOutcome(notes=("ssh: the job's private key could not be read (wrong passphrase?)",))
    try:
        async with asyncio.timeout(timeout * 3):
            conn = await asyncssh.connect(
                ip, port, client_factory=lambda: _TofuClient(host_keys, ip, port, seen), options=options
            )
    except asyncssh.HostKeyNotVerifiable:
        return SshOutcome(ssh=_info(seen, ""), notes=(_changed_note(seen),))
    except asyncssh.PermissionDenied:
        return SshOutcome(ssh=_info(seen, ""), notes=("ssh: login refused for the job's credential",))
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        return SshOutcome(ssh=_info(seen, "") if seen.fingerprint else None, notes=(f"ssh: {_reason(exc)}",))
    async with conn:
        banner = str(conn.get_extra_info("server_version") or "")
        outputs = await _run_audit(conn, timeout * 3)
    return SshOutcome(ssh=_info(seen, banner), audit=audit_from_outputs(outputs))


async def _host_key_only(ip: str, port: int, host_keys: HostKeyStore, timeout: float) -> SshOutcome:
    """No credential: learn the host key from a key exchange and check it against the record."""
    try:
        async with asyncio.timeout(timeout * 3):
            key = await asyncssh.get_server_host_key(ip, port, options=_bare_options(timeout))
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        return SshOutcome(notes=(f"ssh: {_reason(exc)}",))
    if key is None:
        return SshOutcome()
    seen = _SeenKey(key_type=key.get_algorithm(), fingerprint=key.get_fingerprint("sha256"))
    if host_keys.check(ip, port, seen.key_type, seen.fingerprint):
        return SshOutcome(ssh=_info(seen, ""))
    record = host_keys.lookup(ip, port)
    seen.changed = True
    seen.recorded_fingerprint = record.fingerprint if record else ""
    return SshOutcome(ssh=_info(seen, ""), notes=(_changed_note(seen),))


def _changed_note(seen: _SeenKey) -> str:
    return (
        f"ssh: host key changed since first use (recorded {seen.recorded_fingerprint}, now {seen.fingerprint}); "
        "audit skipped, credentials not sent"
    )


def _bare_options(timeout: float) -> asyncssh.SSHClientConnectionOptions:
    return asyncssh.SSHClientConnectionOptions(
        known_hosts=None, config=None, agent_path=None, client_keys=None, connect_timeout=timeout
    )


def _connection_options(credential: SshCredential, timeout: float) -> asyncssh.SSHClientConnectionOptions:
    keys: list[asyncssh.SSHKey] | None = None
    if credential.private_key_pem:
        keys = [asyncssh.import_private_key(credential.private_key_pem, credential.passphrase or None)]
    password = credential.password or None
    return asyncssh.SSHClientConnectionOptions(
        username=credential.username,
        password=password,
        client_keys=keys,
        known_hosts=_no_known_hosts,
        config=None,
        agent_path=None,
        gss_auth=False,
        host_based_auth=False,
        kbdint_auth=password is not None,
        password_auth=password is not None,
        public_key_auth=keys is not None,
        connect_timeout=timeout,
        login_timeout=timeout * 3,
    )


def audit_script(marker: str) -> str:
    """One `sh -c` running every command, each section headed by "<marker> <name>"."""
    sections = [f"echo {marker} {name}; ({command}) 2>/dev/null" for name, command in COMMANDS.items()]
    return "sh -c '" + "; ".join(sections) + "'"


def split_sections(output: str, marker: str) -> dict[str, str]:
    """The script's output cut back into one string per command."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        head, _, name = line.partition(" ")
        if head == marker and name in COMMANDS:
            current = sections.setdefault(name, [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) + ("\n" if lines else "") for name, lines in sections.items()}


async def _run_audit(conn: asyncssh.SSHClientConnection, timeout: float) -> dict[str, str]:
    marker = "@@outpost-" + secrets.token_hex(8)
    with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
        result = await conn.run(audit_script(marker), check=False, timeout=timeout, stdin=asyncssh.DEVNULL)
        if isinstance(result.stdout, str):
            return split_sections(result.stdout, marker)
    return {}


def audit_from_outputs(outputs: dict[str, str]) -> HostAudit:
    """A HostAudit from the commands' outputs (missing or failed ones are empty strings)."""
    os_name, os_version = parse_os_release(outputs.get("os_release", ""))
    macs = parse_ip_link(outputs.get("ip_link", "")) or parse_sys_class_net(outputs.get("sys_class_net", ""))
    return HostAudit(
        hostname=outputs.get("hostname", "").strip().split("\n", 1)[0],
        os_name=os_name,
        os_version=os_version,
        kernel=outputs.get("kernel", "").strip(),
        uptime_seconds=parse_uptime(outputs.get("uptime", "")),
        cpu_count=parse_cpu_count(outputs.get("nproc", "")),
        memory_bytes=parse_meminfo(outputs.get("meminfo", "")),
        interfaces=build_interfaces(macs, parse_ip_addr(outputs.get("ip_addr", ""))),
    )


def _info(seen: _SeenKey, banner: str) -> SshInfo:
    return SshInfo(
        banner=banner,
        host_key_type=seen.key_type,
        host_key_fingerprint=seen.fingerprint,
        host_key_changed=seen.changed,
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
