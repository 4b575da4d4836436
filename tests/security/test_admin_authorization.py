"""Every method of every service, called as every kind of principal, against real processes.

The methods come from the service descriptors, so an RPC added later is covered without
editing this file, and one without a rule in `outpost.auth.policy` fails here. For each:
no credential -> UNAUTHENTICATED (health is the one public service); each role and each
service identity -> let through, or PERMISSION_DENIED, exactly as the policy table says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from outpost.audit.v1 import audit_pb2
from outpost.auth import bearer, policy
from outpost.gateway.v1 import gateway_pb2
from outpost.registry.v1 import registry_pb2
from outpost.scheduler.v1 import scheduler_pb2
from tests.process_harness import ControlPlane, wait_for

REFUSED_BY_POLICY = "may not call"
CALL_SECONDS = 3.0


def _service(pb2: object, name: str) -> ServiceDescriptor:
    return pb2.DESCRIPTOR.services_by_name[name]  # type: ignore[attr-defined, no-any-return]


HEALTH = _service(health_pb2, "Health")
REFLECTION = _service(reflection_pb2, "ServerReflection")
AUDIT = _service(audit_pb2, "AuditService")
LISTENERS = {
    # what the ready file calls the address -> the services served there
    ("registry", "grpc"): [_service(registry_pb2, "RegistryService"), AUDIT, HEALTH, REFLECTION],
    ("scheduler", "grpc"): [_service(scheduler_pb2, "SchedulerService"), AUDIT, HEALTH, REFLECTION],
    ("gateway", "admin"): [
        _service(gateway_pb2, "GatewayService"),
        _service(gateway_pb2, "InventoryService"),
        HEALTH,
        REFLECTION,
    ],
}


def all_methods() -> Iterator[tuple[str, str, MethodDescriptor]]:
    for (service, listener), descriptors in LISTENERS.items():
        for descriptor in descriptors:
            for method in descriptor.methods:
                yield service, listener, method


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


METHODS = list(all_methods())
IDS = [f"{service}:{method.containing_service.name}.{method.name}" for service, _, method in METHODS]


def test_every_method_of_every_descriptor_has_a_rule() -> None:
    names = [full_name(m) for _, _, m in METHODS]
    names += [f"/outpost.agent.v1.AgentService/{m.name}" for m in _agent_methods()]
    assert policy.unruled(names) == []


def _agent_methods() -> list[MethodDescriptor]:
    from outpost.agent.v1 import agent_pb2

    return list(_service(agent_pb2, "AgentService").methods)


@dataclass(frozen=True)
class Caller:
    name: str
    secret: str | None


@pytest.fixture(scope="module")
def callers(plane: ControlPlane) -> dict[str, Caller]:
    """No credential, a token of each role, each service identity, a revoked admin token."""
    found = {"anonymous": Caller("anonymous", None)}
    for role in ("viewer", "operator", "admin"):
        created = json.loads(plane.ctl("tokens", "create", f"sec-{role}", "--role", role, "--json").stdout)
        assert created["name"] == f"sec-{role}" and created["role"] == role
        found[role] = Caller(role, created["token"])
    revoked = json.loads(plane.ctl("tokens", "create", "sec-revoked", "--role", "admin", "--json").stdout)
    plane.ctl("tokens", "revoke", "sec-revoked")
    found["revoked"] = Caller("revoked", revoked["token"])
    found["forged"] = Caller("forged", bearer.new_secret())
    for service in ("gateway", "scheduler"):
        found[f"service:{service}"] = Caller(service, bearer.read_secret_file(plane.identities[service]))
    return found


def call(address: str, method: MethodDescriptor, secret: str | None) -> tuple[grpc.StatusCode, str]:
    """Call `method` with an empty request; the status it ended with (OK included)."""
    request_class = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName(method.input_type.full_name)
    )
    metadata = [("authorization", f"Bearer {secret}")] if secret else []
    kwargs = {"request_serializer": lambda m: m.SerializeToString(), "response_deserializer": lambda b: b}
    with grpc.insecure_channel(address) as channel:
        try:
            if method.client_streaming:
                multi = channel.stream_stream(full_name(method), **kwargs)
                for _ in multi(iter([request_class()]), metadata=metadata, timeout=CALL_SECONDS):
                    break
            elif method.server_streaming:
                stream = channel.unary_stream(full_name(method), **kwargs)
                for _ in stream(request_class(), metadata=metadata, timeout=CALL_SECONDS):
                    break
            else:
                channel.unary_unary(full_name(method), **kwargs)(
                    request_class(), metadata=metadata, timeout=CALL_SECONDS
                )
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def expected_allowed(rule: policy.Rule, caller: str) -> bool:
    from outpost.auth.principals import Principal, Role

    if caller in ("anonymous", "revoked", "forged"):
        return rule.access is policy.Access.PUBLIC
    if caller.startswith("service:"):
        return rule.permits(Principal.of_service(caller.removeprefix("service:")))
    return rule.permits(Principal(name=caller, role=Role.parse(caller)))


KNOWN_PEERS = {"registry": {"gateway", "scheduler"}, "scheduler": {"gateway"}, "gateway": set()}
"""Whose service identity each service accepts (`--peer-token`); any other is unknown there."""

CALLERS = ["anonymous", "forged", "revoked", "viewer", "operator", "admin", "service:gateway", "service:scheduler"]


@pytest.mark.parametrize(("service", "listener", "method"), METHODS, ids=IDS)
def test_each_principal_gets_exactly_what_the_policy_table_says(
    plane: ControlPlane, callers: dict[str, Caller], service: str, listener: str, method: MethodDescriptor
) -> None:
    ready = {"registry": plane.registry_ready, "scheduler": plane.scheduler_ready, "gateway": plane.gateway_ready}
    address = ready[service][listener]
    rule = policy.rule_for(full_name(method))
    assert rule is not None, f"{full_name(method)} has no rule"
    for name in CALLERS:
        code, details = call(address, method, callers[name].secret)
        if expected_allowed(rule, name):
            # AuthenticateToken's own answer to the empty digest it was asked about
            handler_says_unknown = method.name == "AuthenticateToken"
            assert code != grpc.StatusCode.UNAUTHENTICATED or handler_says_unknown, (name, details)
            assert REFUSED_BY_POLICY not in details, (name, details)
        elif name in ("anonymous", "revoked", "forged") or (
            name.startswith("service:") and name.removeprefix("service:") not in KNOWN_PEERS[service]
        ):
            assert code == grpc.StatusCode.UNAUTHENTICATED, (name, code, details)
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (name, code, details)
            assert REFUSED_BY_POLICY in details, (name, details)


def test_the_public_agent_listener_serves_no_inventory_and_no_reflection(
    plane: ControlPlane, callers: dict[str, Caller]
) -> None:
    public = plane.gateway_ready["grpc"]
    list_devices = _service(gateway_pb2, "InventoryService").methods_by_name["ListDevices"]
    for name in ("anonymous", "admin"):
        code, _ = call(public, list_devices, callers[name].secret)
        assert code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED), (name, code)
        code, _ = call(public, REFLECTION.methods_by_name["ServerReflectionInfo"], callers[name].secret)
        assert code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED), (name, code)
    code, _ = call(public, HEALTH.methods_by_name["Check"], None)
    assert code == grpc.StatusCode.OK
    internal = plane.gateway_ready["admin"]
    assert call(internal, list_devices, None)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert call(internal, list_devices, callers["viewer"].secret)[0] == grpc.StatusCode.OK


def test_a_revoked_token_is_refused_from_its_next_call_on_every_service(plane: ControlPlane) -> None:
    token = json.loads(plane.ctl("tokens", "create", "short-lived", "--role", "viewer", "--json").stdout)["token"]
    for command in (["collectors", "list"], ["discoveries", "list"], ["devices", "list"]):
        plane.ctl(*command, token=token)
    plane.ctl("tokens", "revoke", "short-lived")
    for command in (["collectors", "list"], ["discoveries", "list"], ["devices", "list"]):
        refused = plane.ctl(*command, token=token, check=False)
        assert refused.returncode != 0
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "refused the token" in refused.stderr


def test_an_expired_token_is_refused(plane: ControlPlane) -> None:
    token = json.loads(
        plane.ctl("tokens", "create", "one-second", "--role", "viewer", "--expires", "1s", "--json").stdout
    )["token"]
    wait_for(
        lambda: plane.ctl("collectors", "list", token=token, check=False).returncode != 0,
        timeout=10,
        what="the token to expire",
    )
    listed = {t["name"]: t for t in json.loads(plane.ctl("tokens", "list", "--json").stdout)}
    assert listed["one-second"]["expires_at"] is not None


def test_no_token_exits_non_zero_with_one_line_saying_so(plane: ControlPlane) -> None:
    refused = plane.ctl("collectors", "list", token="", check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "needs an admin token" in refused.stderr


def test_token_secrets_are_stored_only_as_digests_and_never_listed(plane: ControlPlane) -> None:
    created = json.loads(plane.ctl("tokens", "create", "never-shown", "--role", "viewer", "--json").stdout)
    listing = plane.ctl("tokens", "list", "--json", "--all").stdout
    assert created["token"] not in listing
    assert plane.admin_token not in listing
    for database in plane.workdir.glob("*.db"):
        assert created["token"].encode() not in database.read_bytes()
