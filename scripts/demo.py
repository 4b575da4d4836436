"""`make demo`: the whole story on one machine, with real peers on loopback.

Starts the control plane (SQLite under a fresh data directory, free ports), real
services on loopback addresses (OpenSSH's sshd, Debian's snmpd, an HTTP and an HTTPS
server, a small DNS server for reverse names), and a collector; then, as an admin would
with `outpostctl`: registers and enables the collector, adds an SSH key and an SNMP
community as credentials, defines a discovery of the loopback range, runs it with a
progress bar, and prints the inventory. Every step prints the command it runs.

Everything it starts is stopped at the end (by pid); `--keep` leaves the control plane
and the collector running until Ctrl-C so you can explore with outpostctl.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outpost.ready import read_ready_file  # noqa: E402
from tests.peers.dns import DnsServer, start_dns_server  # noqa: E402
from tests.peers.snmpd import SnmpAgent, start_snmpd  # noqa: E402
from tests.peers.sshd import SshServer, start_sshd  # noqa: E402
from tests.peers.web import WebServer, start_web_server  # noqa: E402
from tests.tls_certs import make_pki  # noqa: E402

BIN = Path(sys.executable).parent
SSH_HOST, SNMP_HOST, WEB_HOST, TLS_HOST = "127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64"
NAMES = {
    SSH_HOST: "ssh-1.demo.lab.",
    SNMP_HOST: "switch-1.demo.lab.",
    WEB_HOST: "web-1.demo.lab.",
    TLS_HOST: "portal-1.demo.lab.",
}
PASSWORD = "demo-service-password"  # noqa: S105 - the demo's own throwaway collector


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(args: list[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = [Path(args[0]).name, *args[1:]]
    print("$ " + shlex.join(shown), flush=True)
    result = subprocess.run(args, input=stdin, text=True, capture_output=stdin is not None, check=False)
    if stdin is not None:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    if check and result.returncode != 0:
        raise SystemExit(f"demo failed at: {shlex.join(shown)}")
    return result


def wait_for_file(path: Path, what: str, process: subprocess.Popen[bytes], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        data = read_ready_file(path)
        if data:
            return data
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready within {timeout:g}s")


def wait_for_state(status_file: Path, state: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the collector exited with {process.returncode}")
        if (read_ready_file(status_file) or {}).get("state") == state:
            return
        time.sleep(0.05)
    raise SystemExit(f"the collector did not become {state} within {timeout:g}s")


@contextlib.contextmanager
def stopping(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".outpost-demo")
    parser.add_argument("--keep", action="store_true", help="leave everything running until Ctrl-C")
    opts = parser.parse_args()
    if opts.data_dir.exists():
        shutil.rmtree(opts.data_dir)
    opts.data_dir.mkdir(parents=True)
    peers_dir = Path(tempfile.mkdtemp(prefix="outpost-demo-peers-"))
    log_dir = opts.data_dir / "logs"
    log_dir.mkdir()

    say("Real services on loopback: sshd, snmpd, HTTP, HTTPS, and DNS for reverse names")
    sshd = start_sshd(peers_dir / "sshd", SSH_HOST)
    snmpd = start_snmpd(peers_dir / "snmpd", SNMP_HOST, sys_name="switch-1")
    web = start_web_server(WEB_HOST)
    tls = start_web_server(TLS_HOST, pki=make_pki(peers_dir / "pki"))
    dns = start_dns_server(NAMES)
    print(
        f"sshd {sshd.host}:{sshd.port}  snmpd udp {snmpd.host}:{snmpd.port}  http {web.host}:{web.port}  "
        f"https {tls.host}:{tls.port}  dns {dns.host}:{dns.port}"
    )
    peers = Peers(peers_dir, sshd, snmpd, web, tls, dns)
    try:
        return story(opts, log_dir, peers)
    finally:
        for peer in (sshd, snmpd, web, tls, dns):
            with contextlib.suppress(Exception):
                peer.stop()
        shutil.rmtree(peers_dir, ignore_errors=True)


@dataclass
class Peers:
    directory: Path
    sshd: SshServer
    snmpd: SnmpAgent
    web: WebServer
    tls: WebServer
    dns: DnsServer


def story(opts: argparse.Namespace, log_dir: Path, peers: Peers) -> int:
    peers_dir, sshd, snmpd, web, tls, dns = peers.directory, peers.sshd, peers.snmpd, peers.web, peers.tls, peers.dns
    say("The control plane: registry, scheduler, gateway (SQLite, free ports)")
    control_log = (log_dir / "control-plane.log").open("wb")
    listen = {}
    for flag in (
        "registry",
        "registry-metrics",
        "scheduler",
        "scheduler-metrics",
        "gateway-grpc",
        "gateway-admin",
        "gateway-ws",
        "gateway-tcp",
        "gateway-metrics",
    ):
        listen[flag] = f"127.0.0.1:{_free_port()}"
    args = [str(BIN / "outpost-run"), "--data-dir", str(opts.data_dir), "--log-format", "json"]
    args += [a for flag, address in listen.items() for a in (f"--{flag}-listen", address)]
    print("$ " + shlex.join(["outpost-run", *args[1:]]))
    # The demo's control plane is not the user's: its outpostctl context goes beside it.
    os.environ["OUTPOST_CONFIG"] = str(opts.data_dir / "outpostctl-config.json")
    with stopping(subprocess.Popen(args, stdout=control_log, stderr=subprocess.STDOUT)) as control:
        run_dir = opts.data_dir / "run"
        for service in ("registry", "scheduler", "gateway"):
            wait_for_file(run_dir / f"{service}.ready", service, control)
        # No flags: `outpost-run` wrote the context (addresses and the bootstrap admin token).
        ctl = [str(BIN / "outpostctl")]
        run([*ctl, "server", "info"])

        say("A collector inside the 'network' dials out and waits as pending")
        password_file = opts.data_dir / "collector.password"
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        status_file = opts.data_dir / "collector.status"
        collector_args = [
            str(BIN / "outpost-collector"),
            "--server",
            f"grpc://{listen['gateway-grpc']}",
            "--name",
            "demo-edge",
            "--zone",
            "demo-lab",
            "--username",
            "svc-outpost",
            "--password-file",
            str(password_file),
            # The bootstrap access key `outpost-run` had the registry write: every session is sealed with it.
            "--access-key-file",
            str(opts.data_dir / "access.key"),
            "--data-dir",
            str(opts.data_dir / "collector"),
            "--status-file",
            str(status_file),
            "--log-format",
            "json",
        ]
        print("$ " + shlex.join(["outpost-collector", *collector_args[1:]]))
        collector_log = (log_dir / "collector.log").open("wb")
        with stopping(subprocess.Popen(collector_args, stdout=collector_log, stderr=subprocess.STDOUT)) as collector:
            wait_for_state(status_file, "pending", collector)
            run([*ctl, "collectors", "list"])
            say("Why is it not working yet? The server explains, with evidence (exit 3: not live)")
            run([*ctl, "collectors", "explain", "demo-edge"], check=False)

            say("The admin registers it with the service credentials set at install, and enables it")
            run(
                [
                    *ctl,
                    "collectors",
                    "register",
                    "demo-edge",
                    "--username",
                    "svc-outpost",
                    "--password-file",
                    str(password_file),
                    "--enable",
                ]
            )
            wait_for_state(status_file, "enabled", collector)
            run([*ctl, "collectors", "list"])
            run([*ctl, "collectors", "explain", "demo-edge"])

            say("Credentials for the discovery (secrets from files, encrypted at rest, sealed to the collector)")
            key_file = peers_dir / "audit_key"
            key_file.write_text(sshd.client_key_pem)
            key_file.chmod(0o600)
            community_file = peers_dir / "community"
            community_file.write_text(snmpd.community + "\n")
            run(
                [
                    *ctl,
                    "credentials",
                    "add",
                    "lab-ssh",
                    "--type",
                    "ssh",
                    "--username",
                    sshd.user,
                    "--private-key-file",
                    str(key_file),
                ]
            )
            run([*ctl, "credentials", "add", "lab-snmp", "--type", "snmp-v2c", "--community-file", str(community_file)])
            run([*ctl, "credentials", "list"])

            say("A discovery of the loopback range, run now (schedules run the same discovery on cron)")
            ports = sorted({22, 80, 443, sshd.port, web.port, tls.port})
            run(
                [
                    *ctl,
                    "discoveries",
                    "create",
                    "demo-lab",
                    "--targets",
                    "127.0.0.60-127.0.0.65",
                    "--ports",
                    ",".join(map(str, ports)),
                    "--collector",
                    "demo-edge",
                    "--probes",
                    "icmp,tcp,dns,banners,snmp,ssh",
                    "--ssh-credential",
                    "lab-ssh",
                    "--snmp-credential",
                    "lab-snmp",
                    "--ssh-port",
                    str(sshd.port),
                    "--snmp-port",
                    str(snmpd.port),
                    "--dns-resolver",
                    f"{dns.host}:{dns.port}",
                ]
            )
            run([*ctl, "discoveries", "run", "demo-lab", "--wait"])

            say("The inventory")
            run([*ctl, "devices", "list"])
            run([*ctl, "devices", "show", SSH_HOST])
            print(f"\nlogs of every process: {log_dir}")
            if opts.keep:
                say("Still running (Ctrl-C to stop). Try: " + shlex.join(["outpostctl", *ctl[1:], "jobs", "list"]))
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
