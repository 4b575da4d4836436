"""The SSH audit against a real sshd: facts equal what this host reports; host keys are TOFU."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from services.collector.discovery import DiscoveryPlan, HostKeyStore, SshCredential
from tests.integration.discovery.conftest import Scan
from tests.peers.password_ssh import PasswordSshServer
from tests.peers.process import wait_until
from tests.peers.sshd import SshServer

SYS_CLASS_NET = Path("/sys/class/net")


def _plan(sshd: SshServer, credential: SshCredential | None) -> DiscoveryPlan:
    return DiscoveryPlan(
        targets=(sshd.host,),
        exclusions=(),
        ports=(sshd.port,),
        probes=frozenset({"tcp", "banners", "ssh"}),
        ssh=credential,
        ssh_port=sshd.port,
        timeout=2.0,
    )


def _key_login(sshd: SshServer) -> SshCredential:
    return SshCredential(username=sshd.user, private_key_pem=sshd.client_key_pem)


def this_host() -> dict[str, Any]:
    """The facts as this host reports them, read directly (not through the audit's parsers)."""
    os_release = platform.freedesktop_os_release()
    mem_total = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    return {
        "hostname": socket.gethostname(),
        "os_name": os_release["NAME"],
        "os_version": os_release.get("VERSION_ID", os_release.get("VERSION", "")),
        "kernel": os.uname().release,
        "cpu_count": int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout),
        "memory_bytes": int(mem_total.split()[1]) * 1024,
        "uptime_seconds": float(Path("/proc/uptime").read_text().split()[0]),
        "macs": {path.name: (path / "address").read_text().strip() for path in SYS_CLASS_NET.iterdir()},
    }


def stranger_key(directory: Path) -> str:
    """A private key sshd has never heard of."""
    path = directory / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.read_text()


async def test_the_audit_reports_what_this_host_reports(sshd: SshServer, scan: Scan) -> None:
    device = (await scan(_plan(sshd, _key_login(sshd))))[sshd.host]
    audit = device.audit
    assert audit is not None, device.notes

    host = this_host()
    assert audit.hostname == host["hostname"]
    assert audit.os_name == host["os_name"]
    assert audit.os_version == host["os_version"]
    assert audit.kernel == host["kernel"]
    assert audit.cpu_count == host["cpu_count"]
    assert audit.memory_bytes == host["memory_bytes"]
    assert abs(audit.uptime_seconds - host["uptime_seconds"]) < 30
    interfaces = {interface.name: interface.mac for interface in audit.interfaces}
    assert interfaces == host["macs"]
    assert "127.0.0.1/8" in next(i for i in audit.interfaces if i.name == "lo").addresses
    assert f"Accepted publickey for {sshd.user}" in sshd.log_since_start()


async def test_the_host_key_is_recorded_on_first_use(sshd: SshServer, scan: Scan, host_keys: HostKeyStore) -> None:
    device = (await scan(_plan(sshd, _key_login(sshd))))[sshd.host]
    (port,) = device.ports

    assert port.service == "ssh"
    assert port.ssh is not None
    assert port.ssh.host_key_type == sshd.host_key_type == "ssh-ed25519"
    assert port.ssh.host_key_fingerprint == sshd.host_key_fingerprint
    assert port.ssh.host_key_changed is False
    assert port.ssh.banner.startswith("SSH-2.0-OpenSSH")
    record = HostKeyStore(host_keys.path.parent).lookup(sshd.host, sshd.port)  # as persisted on disk
    assert record is not None
    assert (record.key_type, record.fingerprint) == (sshd.host_key_type, sshd.host_key_fingerprint)


async def test_a_changed_host_key_is_flagged_and_no_credential_is_sent(sshd: SshServer, scan: Scan) -> None:
    first = (await scan(_plan(sshd, _key_login(sshd))))[sshd.host]
    assert first.audit is not None
    recorded = sshd.host_key_fingerprint

    sshd.restart_with_new_host_key()
    device = (await scan(_plan(sshd, _key_login(sshd))))[sshd.host]
    (port,) = device.ports

    assert port.ssh is not None
    assert port.ssh.host_key_changed is True
    assert port.ssh.host_key_fingerprint == sshd.host_key_fingerprint != recorded
    assert device.audit is None
    assert any("host key changed" in note and recorded in note for note in device.notes)
    # sshd logs the end of our key exchange; anything about authentication would come before it.
    wait_until(lambda: "[preauth]" in sshd.log_since_start(), "sshd to log the end of the key exchange")
    log = sshd.log_since_start()
    assert "Host key is not trusted" in log
    assert "publickey" not in log and "authenticating user" not in log and "Accepted" not in log


async def test_without_a_credential_only_the_host_key_is_learned(sshd: SshServer, scan: Scan) -> None:
    device = (await scan(_plan(sshd, None)))[sshd.host]
    (port,) = device.ports

    assert device.audit is None
    assert device.notes == ()
    assert port.ssh is not None
    assert port.ssh.host_key_fingerprint == sshd.host_key_fingerprint
    assert "publickey" not in sshd.log_since_start()


async def test_a_refused_login_is_a_note(sshd: SshServer, scan: Scan, tmp_path: Path) -> None:
    credential = SshCredential(username=sshd.user, private_key_pem=stranger_key(tmp_path))
    device = (await scan(_plan(sshd, credential)))[sshd.host]

    assert device.audit is None
    assert device.notes == ("ssh: login refused for the job's credential",)


async def test_a_password_login_audits_the_host(password_sshd: PasswordSshServer, scan: Scan) -> None:
    credential = SshCredential(username=password_sshd.username, password=password_sshd.password)
    plan = DiscoveryPlan(
        targets=(password_sshd.host,),
        exclusions=(),
        ports=(password_sshd.port,),
        probes=frozenset({"tcp", "ssh"}),
        ssh=credential,
        ssh_port=password_sshd.port,
        timeout=2.0,
    )
    device = (await scan(plan))[password_sshd.host]

    assert device.audit is not None, device.notes
    host = this_host()
    assert (device.audit.hostname, device.audit.kernel) == (host["hostname"], host["kernel"])
    assert device.audit.memory_bytes == host["memory_bytes"]
    (port,) = device.ports
    assert port.ssh is not None and port.ssh.host_key_fingerprint == password_sshd.host_key_fingerprint


async def test_a_wrong_password_is_a_note(password_sshd: PasswordSshServer, scan: Scan) -> None:
    credential = SshCredential(username=password_sshd.username, password="not-" + password_sshd.password)
    plan = DiscoveryPlan(
        targets=(password_sshd.host,),
        exclusions=(),
        ports=(password_sshd.port,),
        probes=frozenset({"tcp", "ssh"}),
        ssh=credential,
        ssh_port=password_sshd.port,
        timeout=2.0,
    )
    device = (await scan(plan))[password_sshd.host]

    assert device.audit is None
    assert device.notes == ("ssh: login refused for the job's credential",)
