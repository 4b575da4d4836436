"""Naming a port from a recognition: nmap's name, "https" for HTTP over TLS, softmatches name only."""

from __future__ import annotations

import pytest

from services.collector.discovery.model import HttpInfo, PortObservation, SshInfo
from services.collector.discovery.recognition import RecognitionStats, ServiceRecognizer, apply
from services.collector.discovery.service_probes import ProbeDatabase, Recognition

NGINX = Recognition(service="http", product="nginx", version="1.18.0")


def test_a_hard_match_names_service_product_and_version() -> None:
    found = apply(PortObservation(8001, banner="220 x"), 8001, Recognition("smtp", product="Postfix smtpd"), tls=False)
    assert (found.service, found.service_product, found.service_version, found.banner) == (
        "smtp",
        "Postfix smtpd",
        "",
        "220 x",
    )


def test_http_over_tls_is_https_as_outpost_has_always_called_it() -> None:
    base = PortObservation(443, service="https", http=HttpInfo(200))
    assert apply(base, 443, NGINX, tls=True).service == "https"
    assert apply(PortObservation(80, service="http"), 80, NGINX, tls=False).service == "http"


def test_a_softmatch_names_an_unnamed_port_but_not_one_our_parsers_recognised() -> None:
    soft = Recognition("smtp", soft=True)
    assert apply(None, 2525, soft, tls=False) == PortObservation(2525, service="smtp")
    assert apply(PortObservation(25, service="smtp-guess"), 25, soft, tls=False).service == "smtp"
    ssh = PortObservation(22, service="ssh", ssh=SshInfo("SSH-2.0-x"))
    assert apply(ssh, 22, Recognition("telnet", soft=True), tls=False).service == "ssh"


@pytest.mark.parametrize("intensity", [-1, 10])
def test_intensity_is_nmaps_0_to_9(intensity: int) -> None:
    with pytest.raises(ValueError, match="0-9"):
        ServiceRecognizer(ProbeDatabase(()), intensity)


def test_stats_are_logged_under_service_names() -> None:
    stats = RecognitionStats(ports=3, recognised=2, unrecognised=1)
    assert stats.as_log()["service_ports"] == 3
    assert stats.as_log()["service_budget_exhausted"] == 0
