"""The plan and credential dataclasses: validation, and secrets never in repr()."""

from __future__ import annotations

import pytest

from outpost.errors import InvalidArgument
from services.collector.discovery.model import DiscoveryPlan, SnmpV2cCredential, SnmpV3Credential, SshCredential


def test_credentials_never_show_their_secrets() -> None:
    v2c = SnmpV2cCredential("community-s3cret")
    v3 = SnmpV3Credential("monitor", "SHA", "auth-s3cret", "AES", "priv-s3cret")
    password = SshCredential("admin", password="password-s3cret")
    key = SshCredential("admin", private_key_pem="-----BEGIN key-s3cret", passphrase="phrase-s3cret")
    plan = DiscoveryPlan(targets=("10.0.0.1",), exclusions=(), ports=(22,), probes=frozenset({"tcp"}), snmp=v3, ssh=key)
    for text in [repr(v2c), repr(v3), repr(password), str(key), repr(plan), str(plan)]:
        assert "s3cret" not in text
    assert "monitor" in repr(v3) and "admin" in repr(password)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SnmpV2cCredential(""), "empty community"),
        (lambda: SnmpV3Credential("u", "SHA1", "12345678"), "auth protocol 'SHA1'"),
        (lambda: SnmpV3Credential("u", "SHA", "12345678", "BLOWFISH", "12345678"), "privacy protocol"),
        (lambda: SnmpV3Credential("u", "", "", "AES", "12345678"), "needs an auth protocol"),
        (lambda: SnmpV3Credential("u", "SHA", "short"), "shorter than 8"),
        (lambda: SshCredential("root"), "neither a password nor a private key"),
        (lambda: SshCredential("", password="x"), "empty username"),
    ],
)
def test_incomplete_credentials_are_refused(make: object, message: str) -> None:
    assert callable(make)
    with pytest.raises(InvalidArgument, match=message):
        make()


def _plan(**changes: object) -> DiscoveryPlan:
    values: dict[str, object] = {
        "targets": ("10.0.0.0/24",),
        "exclusions": (),
        "ports": (22, 80),
        "probes": frozenset({"icmp", "tcp"}),
    }
    values.update(changes)
    return DiscoveryPlan(**values)  # type: ignore[arg-type]


def test_plan_defaults() -> None:
    plan = _plan()
    assert (plan.concurrency, plan.rate_per_second, plan.timeout, plan.deadline) == (256, 0, 1.0, 3600)
    assert (plan.snmp_port, plan.ssh_port, plan.batch_max_devices, plan.dns_resolver) == (161, 22, 64, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"probes": frozenset({"tcp", "arp"})}, r"unknown probe\(s\) arp"),
        ({"targets": ()}, "at least one target"),
        ({"ports": (0,)}, "outside 1-65535"),
        ({"ports": (22, 22)}, "more than once"),
        ({"ssh_port": 70000}, "outside 1-65535"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate_per_second": -1}, "rate_per_second"),
        ({"timeout": 0}, "positive"),
        ({"ports": ()}, "tcp probe needs at least one port"),
    ],
)
def test_bad_plans_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        _plan(**changes)
