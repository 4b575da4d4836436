"""Real peers on loopback for the discovery engine's tests, each stopped by pid (or thread).

Each peer has a 127.0.0.x address of its own, so a scan of one never meets another:
web (HTTP, TLS) and DNS names on 127.0.0.11 ("web-1"), sshd on 127.0.0.12, snmpd on
127.0.0.13, an SSH server with password logins (asyncssh) on 127.0.0.14. Tests that
need plain listeners take `tcp_listeners` and use other addresses (127.0.0.40 and up).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.collector.discovery import DeviceObservation, DiscoveryPlan, HostKeyStore, discover
from tests.peers.dns import DnsServer, start_dns_server
from tests.peers.password_ssh import PasswordSshServer, start_password_ssh_server
from tests.peers.snmpd import SnmpAgent, start_snmpd
from tests.peers.sshd import SshServer, start_sshd
from tests.peers.tcp import TcpListeners
from tests.peers.web import WebServer, start_web_server
from tests.tls_certs import TestPki, make_pki

WEB_HOST = "127.0.0.11"
WEB_NAME = "web-1.lab.test"
SSH_HOST = "127.0.0.12"
PASSWORD_SSH_HOST = "127.0.0.14"
SNMP_HOST = "127.0.0.13"

Scan = Callable[..., Awaitable[dict[str, DeviceObservation]]]


@pytest.fixture
def host_keys(tmp_path: Path) -> HostKeyStore:
    return HostKeyStore(tmp_path / "host_keys")


@pytest.fixture
def scan(host_keys: HostKeyStore) -> Scan:
    """`await scan(plan)`: run discovery to the end; the devices by IP."""

    async def run(plan: DiscoveryPlan, **kwargs: Any) -> dict[str, DeviceObservation]:
        return {device.ip: device async for device in discover(plan, host_keys=host_keys, **kwargs)}

    return run


@pytest.fixture
def tcp_listeners() -> Iterator[TcpListeners]:
    listeners = TcpListeners()
    yield listeners
    listeners.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    server = start_sshd(tmp_path / "sshd", SSH_HOST)
    yield server
    server.stop()


@pytest.fixture
async def password_sshd() -> AsyncIterator[PasswordSshServer]:
    server = await start_password_ssh_server(PASSWORD_SSH_HOST)
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def snmp_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpAgent]:
    agent = start_snmpd(tmp_path_factory.mktemp("snmpd"), SNMP_HOST)
    yield agent
    agent.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def web_server() -> Iterator[WebServer]:
    server = start_web_server(WEB_HOST)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_server(pki: TestPki) -> Iterator[WebServer]:
    server = start_web_server(WEB_HOST, pki=pki)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    server = start_dns_server({WEB_HOST: WEB_NAME + "."})
    yield server
    server.stop()
