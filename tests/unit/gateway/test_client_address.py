"""Whose word names the collector's address: the peer's own, or a trusted proxy's (ADR 0026)."""

from __future__ import annotations

import pytest

from services.gateway.transports.client_address import TrustedProxies, format_address, forwarded_client

LB = ("10.0.0.9", 41000)
TRUSTED = TrustedProxies.parse("10.0.0.0/24, 192.0.2.5")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    attacker = ("198.51.100.66", 5000)
    assert forwarded_client(attacker, TRUSTED, x_forwarded_for=["10.1.2.3"]) == "198.51.100.66:5000"
    assert forwarded_client(attacker, TRUSTED, forwarded=["for=10.1.2.3"]) == "198.51.100.66:5000"


def test_with_no_trusted_proxies_every_header_is_ignored() -> None:
    assert forwarded_client(LB, TrustedProxies(), x_forwarded_for=["203.0.113.7"]) == "10.0.0.9:41000"


def test_the_rightmost_untrusted_hop_is_the_client_and_spoofed_hops_left_of_it_are_not() -> None:
    # The collector wrote "10.9.9.9" itself; the ingress appended the address it saw.
    xff = ["10.9.9.9, 203.0.113.7"]
    assert forwarded_client(LB, TRUSTED, x_forwarded_for=xff) == "203.0.113.7"
    # Two trusted proxies in a row are skipped.
    assert forwarded_client(LB, TRUSTED, x_forwarded_for=["203.0.113.7, 192.0.2.5"]) == "203.0.113.7"
    # Several headers are one list, in order.
    assert forwarded_client(LB, TRUSTED, x_forwarded_for=["1.1.1.1", "203.0.113.8"]) == "203.0.113.8"


def test_forwarded_rfc7239_wins_over_x_forwarded_for() -> None:
    got = forwarded_client(
        LB,
        TRUSTED,
        forwarded=['for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.9'],
        x_forwarded_for=["203.0.113.99"],
    )
    assert got == "[2001:db8:cafe::17]"


@pytest.mark.parametrize("hop", ["unknown", "_hidden", "not-an-address", "203.0.113.7:80:80"])
def test_a_hop_that_is_not_an_address_reports_the_proxy_never_a_guess(hop: str) -> None:
    assert forwarded_client(LB, TRUSTED, x_forwarded_for=[f"203.0.113.7, {hop}"]) == "10.0.0.9:41000"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert forwarded_client(LB, TRUSTED, x_forwarded_for=["10.0.0.7, 10.0.0.8"]) == "10.0.0.7"


def test_a_trusted_peer_without_headers_is_itself() -> None:
    assert forwarded_client(LB, TRUSTED) == "10.0.0.9:41000"
    assert forwarded_client(None, TRUSTED) == "unknown"


def test_ipv4_mapped_peers_are_matched_as_ipv4() -> None:
    assert TRUSTED.trusts("::ffff:10.0.0.9")
    assert forwarded_client(("::ffff:10.0.0.9", 1), TRUSTED, x_forwarded_for=["203.0.113.7"]) == "203.0.113.7"


def test_addresses_are_formatted_once() -> None:
    assert format_address("203.0.113.7", 5000) == "203.0.113.7:5000"
    assert format_address("2001:db8::7", 5000) == "[2001:db8::7]:5000"
    assert format_address("2001:db8::7") == "[2001:db8::7]"
    assert format_address("::ffff:10.0.0.1", 1) == "10.0.0.1:1"


@pytest.mark.parametrize("text", ["10.0.0.0/33", "10.0.0.1/24", "gateway.example", "10.0.0.0/8,,nope"])
def test_bad_trusted_proxies_are_refused_naming_the_entry(text: str) -> None:
    with pytest.raises(ValueError, match="--trusted-proxies"):
        TrustedProxies.parse(text)


def test_the_registry_reads_every_address_the_gateway_formats() -> None:
    from services.registry.domain.enrollment_tokens import address_in

    for address in ("203.0.113.7:5000", "[2001:db8::7]:5000", "[2001:db8::7]", "203.0.113.7"):
        host_in = "2001:db8::/32" if "2001" in address else "203.0.113.0/24"
        assert address_in(address, (host_in,)), address
