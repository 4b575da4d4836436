"""Service recognition by nmap's fingerprints: the real engine against loopback servers, nmap as the judge."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.collector.discovery import DiscoveryPlan, HttpInfo, PortObservation
from services.collector.discovery.recognition import ServiceRecognizer
from services.collector.discovery.service_probes import DEFAULT_SERVICE_PROBES_FILE, load_service_probes
from tests.integration.discovery.conftest import Scan
from tests.peers.greeters import (
    FTP_GREETING,
    IMAP_GREETING,
    POP3_GREETING,
    SMTP_GREETING,
    SSH_GREETING,
    Greeters,
    mysql_handshake,
)

HOST = "127.0.0.117"


@pytest.fixture(scope="module")
def recognizer() -> ServiceRecognizer:
    if not Path(DEFAULT_SERVICE_PROBES_FILE).exists():
        pytest.skip(f"{DEFAULT_SERVICE_PROBES_FILE} is absent (Debian package nmap)")
    return ServiceRecognizer(load_service_probes(DEFAULT_SERVICE_PROBES_FILE))


@pytest.fixture
def greeters() -> Iterator[dict[str, int]]:
    servers = Greeters()
    ports = {
        "smtp": servers.greeter(HOST, SMTP_GREETING),
        "ftp": servers.greeter(HOST, FTP_GREETING),
        "pop3": servers.greeter(HOST, POP3_GREETING, reply=b"-ERR unknown command\r\n"),
        "imap": servers.greeter(HOST, IMAP_GREETING, reply=b"* BAD Error in IMAP command\r\n"),
        "mysql": servers.greeter(HOST, mysql_handshake()),
        "ssh": servers.greeter(HOST, SSH_GREETING, reply=b"Protocol mismatch.\r\n"),
        "redis": servers.redis(HOST),
        "http": servers.http(HOST),
        "silent": servers.silent(HOST),
    }
    yield ports
    servers.close()


def plan(ports: dict[str, int]) -> DiscoveryPlan:
    return DiscoveryPlan(
        targets=(HOST,), exclusions=(), ports=tuple(ports.values()), probes=frozenset({"tcp", "banners"}), timeout=1.0
    )


async def test_servers_are_named_with_product_and_version_from_nmaps_fingerprints(
    greeters: dict[str, int], recognizer: ServiceRecognizer, scan: Scan
) -> None:
    with capture_logs() as logs:
        device = (await scan(plan(greeters), recognizer=recognizer))[HOST]
    by_port = {port.port: port for port in device.ports}
    named = {kind: by_port[port] for kind, port in greeters.items()}

    def summary(port: PortObservation) -> tuple[str, str, str]:
        return port.service, port.service_product, port.service_version

    assert summary(named["smtp"]) == ("smtp", "Postfix smtpd", "")
    assert summary(named["ftp"]) == ("ftp", "vsftpd", "3.0.3")
    assert summary(named["pop3"]) == ("pop3", "Dovecot pop3d", "")
    assert summary(named["imap"]) == ("imap", "Dovecot imapd", "")
    assert summary(named["mysql"]) == ("mysql", "MySQL", "8.0.35-0ubuntu0.22.04.1")
    assert summary(named["ssh"]) == ("ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.6")
    assert summary(named["redis"]) == ("redis", "Redis key-value store", "")
    assert summary(named["http"]) == ("http", "nginx", "1.18.0")
    assert named["http"].http == HttpInfo(status=200, server="nginx/1.18.0 (Ubuntu)", title="Greeters")
    assert named["smtp"].banner == SMTP_GREETING.decode().strip()
    assert named["ssh"].ssh is not None and named["ssh"].ssh.banner == SSH_GREETING.decode().strip()
    assert summary(named["silent"]) == ("", "", "")

    (finished,) = [line for line in logs if line["event"] == "discovery_finished"]
    assert finished["service_recognition"] is True
    assert finished["service_ports"] == len(greeters)
    assert finished["service_recognised"] == len(greeters) - 1
    assert finished["service_unrecognised"] == 1
    assert finished["service_budget_exhausted"] == 1  # the silent port ran out of time, and says so


async def test_without_the_fingerprints_a_greeting_gets_no_service_as_before(
    greeters: dict[str, int], scan: Scan
) -> None:
    ports = {kind: greeters[kind] for kind in ("smtp", "ssh", "http")}
    device = (await scan(plan(ports)))[HOST]
    by_port = {port.port: port for port in device.ports}

    assert (by_port[ports["smtp"]].service, by_port[ports["smtp"]].service_product) == ("", "")
    assert by_port[ports["smtp"]].banner == SMTP_GREETING.decode().strip()
    assert by_port[ports["ssh"]].service == "ssh"
    assert by_port[ports["http"]].service == "http"


async def test_nmap_names_the_same_services_and_products(
    greeters: dict[str, int], recognizer: ServiceRecognizer, scan: Scan
) -> None:
    judged = ("smtp", "ftp", "mysql")
    ports = {kind: greeters[kind] for kind in judged}
    device = (await scan(plan(ports), recognizer=recognizer))[HOST]
    ours = {port.port: (port.service, port.service_product, port.service_version) for port in device.ports}

    process = await asyncio.create_subprocess_exec(
        "nmap", "-sV", "-n", "-Pn", "-sT", "-p", ",".join(map(str, ports.values())), HOST, "-oX", "-",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    theirs = {}
    for port in ET.fromstring(out).iter("port"):
        service = port.find("service")
        assert service is not None
        theirs[int(port.get("portid", "0"))] = (
            service.get("name", ""),
            service.get("product", ""),
            service.get("version", ""),
        )

    assert ours == theirs
