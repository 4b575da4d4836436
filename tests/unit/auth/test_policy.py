"""The policy table: what each principal may call, and that our own services' clients only
call what their identities are granted (a missing grant would fail in production only)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outpost import errors
from outpost.auth import bearer, policy
from outpost.auth.principals import Principal, Role
from services.registry.domain import tokens

ROOT = Path(__file__).resolve().parents[3]
STUB_CALL = re.compile(r"_stub\.([A-Z][A-Za-z]+)\(")
CLIENTS = {
    # (file, service it calls, identity that calls it)
    ("services/gateway/peers/registry_client.py", "outpost.registry.v1.RegistryService", "gateway"),
    ("services/gateway/peers/scheduler_client.py", "outpost.scheduler.v1.SchedulerService", "gateway"),
    ("libs/outpost/auth/registry_tokens.py", "outpost.registry.v1.RegistryService", "gateway"),
    ("libs/outpost/auth/registry_tokens.py", "outpost.registry.v1.RegistryService", "scheduler"),
}


@pytest.mark.parametrize(("path", "service", "identity"), sorted(CLIENTS))
def test_every_rpc_a_service_client_makes_is_granted_to_its_identity(path: str, service: str, identity: str) -> None:
    called = set(STUB_CALL.findall((ROOT / path).read_text()))
    assert called, f"no stub calls found in {path}"
    for method in sorted(called):
        rule = policy.rule_for(f"/{service}/{method}")
        assert rule is not None, f"{method} has no rule"
        assert rule.permits(Principal.of_service(identity)), f"{identity} may not call {method}, yet {path} does"


def test_roles_include_the_ones_below_and_no_more() -> None:
    operator_change = policy.RULES["/outpost.registry.v1.RegistryService/EnableCollector"]
    assert not operator_change.permits(Principal("v", role=Role.VIEWER))
    assert operator_change.permits(Principal("o", role=Role.OPERATOR))
    assert operator_change.permits(Principal("a", role=Role.ADMIN))


def test_no_admin_token_can_call_a_service_only_method_and_no_service_an_admin_one() -> None:
    admin = Principal("root", role=Role.ADMIN)
    for method, rule in policy.RULES.items():
        if rule.access is policy.Access.SERVICES:
            assert not rule.permits(admin), method
        if rule.access is policy.Access.ROLE and rule.min_role is Role.ADMIN:
            assert not rule.permits(Principal.of_service("gateway")), method


def test_every_change_is_audited_and_no_read_is() -> None:
    changes = {"Register", "Enable", "Disable", "Remove", "Create", "Delete", "Revoke", "Set", "Start", "Cancel"}
    for method, rule in policy.RULES.items():
        name = method.rsplit("/", 1)[1]
        if rule.access is policy.Access.ROLE and any(name.startswith(verb) for verb in changes):
            assert rule.audited, method
        if name.startswith(("List", "Get", "Explain", "Watch")):
            assert not rule.audited, method


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([("authorization", "Bearer abc")], "abc"),
        ([("Authorization", "bearer  abc ")], "abc"),
        ([("authorization", "Basic abc")], None),
        ([("authorization", "Bearer")], None),
        ([("authorization", "Bearer " + "x" * 300)], None),
        ([("x-other", "Bearer abc")], None),
        (None, None),
    ],
)
def test_the_bearer_secret_is_read_only_from_a_well_formed_authorization_header(
    metadata: list[tuple[str, str]] | None, expected: str | None
) -> None:
    assert bearer.secret_from_metadata(metadata) == expected


def test_secrets_are_random_prefixed_and_stored_as_sha256() -> None:
    one, two = bearer.new_secret(), bearer.new_secret()
    assert one != two and one.startswith("outpost_") and len(one) > 40
    assert len(bearer.digest(one)) == 32 and bearer.digest(one) != bearer.digest(two)


def test_a_token_is_unusable_once_revoked_or_expired() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    token = tokens.AdminToken("t", Role.VIEWER, b"d" * 32, now, "x", expires_at=now + timedelta(seconds=5))
    assert tokens.refusal_reason(token, now) is None
    assert tokens.refusal_reason(token, now + timedelta(seconds=5)) == "expired"
    revoked = tokens.AdminToken("t", Role.VIEWER, b"d" * 32, now, "x", revoked_at=now)
    assert tokens.refusal_reason(revoked, now) == "revoked"
    assert tokens.refusal_reason(None, now) == "unknown"


@pytest.mark.parametrize("name", ["", "-x", "a b", "service:gateway", "x" * 65])
def test_token_names_are_plain_and_service_names_are_reserved(name: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        tokens.require_name(name)


def test_expiry_is_bounded_and_zero_means_never() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert tokens.expiry(now, 0) is None
    assert tokens.expiry(now, 60) == now + timedelta(seconds=60)
    with pytest.raises(errors.InvalidArgument):
        tokens.expiry(now, 20 * 365 * 86400)
