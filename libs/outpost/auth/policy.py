"""Which principal each RPC needs: one table for every service, deny by default.

Read a rule as "who may call this":
- `PUBLIC`: anyone, no credential (health probes only);
- `IN_BAND`: the agent stream, which authenticates collectors inside its own protocol
  (Ed25519 proof, registry decision) and is served only on the public listener;
- `role(R)`: an admin token whose role is R or higher (viewer < operator < admin);
- `services(...)`: only these services' identities; no admin token, whatever its role.

`audited` rules are changes: the interceptor records each call (principal, time, peer,
target, outcome) in the service's audit trail. A method missing from `RULES` is refused
by the interceptor, and `tests/security` fails for every method of every service
descriptor that has no rule, so a new RPC cannot ship open.

The table is also `docs/security.md`'s "Who may call what"; change both together.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from outpost.auth.principals import Principal, Role


class Access(enum.Enum):
    PUBLIC = "public"
    IN_BAND = "in_band"
    ROLE = "role"
    SERVICES = "services"


@dataclass(frozen=True)
class Rule:
    access: Access
    min_role: Role | None = None
    allowed_services: frozenset[str] = frozenset()
    audited: bool = False

    def permits(self, principal: Principal) -> bool:
        if self.access is Access.PUBLIC:
            return True
        if self.access is Access.SERVICES:
            return principal.service is not None and principal.service in self.allowed_services
        if self.access is Access.ROLE:
            assert self.min_role is not None
            if principal.service is not None:
                return principal.service in self.allowed_services
            return principal.role is not None and principal.role >= self.min_role
        return False  # IN_BAND methods are never served behind this interceptor

    def describe(self) -> str:
        """What the rule asks for, in a refusal message or the docs table."""
        if self.access is Access.ROLE:
            assert self.min_role is not None
            also = "".join(f" or service identity {name}" for name in sorted(self.allowed_services))
            return f"role {self.min_role.label} or higher{also}"
        if self.access is Access.SERVICES:
            return "service identity " + " or ".join(sorted(self.allowed_services))
        return self.access.value


PUBLIC = Rule(Access.PUBLIC)
IN_BAND = Rule(Access.IN_BAND)


def role(min_role: Role, *, audited: bool = False, also_services: Iterable[str] = ()) -> Rule:
    return Rule(Access.ROLE, min_role=min_role, audited=audited, allowed_services=frozenset(also_services))


def services(*names: str) -> Rule:
    return Rule(Access.SERVICES, allowed_services=frozenset(names))


VIEWER = role(Role.VIEWER)
OPERATOR_CHANGE = role(Role.OPERATOR, audited=True)
ADMIN_CHANGE = role(Role.ADMIN, audited=True)
GATEWAY = services("gateway")


def _methods(service: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    return {f"/{service}/{method}": rule for method, rule in rules.items()}


RULES: dict[str, Rule] = {
    **_methods(
        "grpc.health.v1.Health",
        {"Check": PUBLIC, "Watch": PUBLIC, "List": PUBLIC},
    ),
    **_methods(
        "grpc.reflection.v1alpha.ServerReflection",
        {"ServerReflectionInfo": VIEWER},
    ),
    **_methods(
        "outpost.agent.v1.AgentService",
        {"Connect": IN_BAND},
    ),
    **_methods(
        "outpost.registry.v1.RegistryService",
        {
            # gateways: handshakes, the collector watch, session status, sealing
            "AuthenticateCollector": GATEWAY,
            "WatchCollectors": GATEWAY,
            "ReportSessions": GATEWAY,
            # gateways, for a collector's KeyRotation inside its sealed session (ADR 0024)
            "RotateCollectorKey": GATEWAY,
            # gateways, for a registered collector's Challenge: its service-password
            # parameters (salt, costs, bound key; never the stored key) (ADR 0025)
            "GetPasswordParameters": GATEWAY,
            # gateways, for their watched cache of registered collectors (ADR 0034): keys,
            # state and SCRAM stored keys (never a password); verifies, cannot log in
            "ListCollectorCredentials": GATEWAY,
            "SealCredentials": GATEWAY,
            # gateways and schedulers check the admin tokens presented to them
            "AuthenticateToken": services("gateway", "scheduler"),
            # admins
            # admins, and gateways at start (server instance, heartbeat interval)
            "GetServerInfo": role(Role.VIEWER, also_services=("gateway", "scheduler")),
            # admins; and schedulers, to check a discovery's collector or zone and say why runs wait
            "ListCollectors": role(Role.VIEWER, also_services=("scheduler",)),
            "GetCollector": VIEWER,
            "ListNameConflicts": VIEWER,
            "ExplainCollector": VIEWER,
            "RegisterCollector": ADMIN_CHANGE,
            "EnableCollector": OPERATOR_CHANGE,
            "DisableCollector": OPERATOR_CHANGE,
            "RemoveCollector": ADMIN_CHANGE,
            "CreateCredential": ADMIN_CHANGE,
            "ListCredentials": VIEWER,
            "DeleteCredential": ADMIN_CHANGE,
            "CreateToken": ADMIN_CHANGE,
            "ListTokens": role(Role.ADMIN),
            "RevokeToken": ADMIN_CHANGE,
            # access keys: admins change them; viewers see them (never a secret)
            "CreateAccessKey": ADMIN_CHANGE,
            "ListAccessKeys": VIEWER,
            "RevokeAccessKey": ADMIN_CHANGE,
            # gateways only: the access keys' secrets and the server's private keys
            "WatchAccessKeys": GATEWAY,
            "GetServerKeys": GATEWAY,
            # zone enrollment tokens: admins change them; viewers see them (never a secret)
            "CreateEnrollmentToken": ADMIN_CHANGE,
            "ListEnrollmentTokens": VIEWER,
            "RevokeEnrollmentToken": ADMIN_CHANGE,
            # rotation (ADR 0024): admins announce the next server key
            "RotateServerKey": ADMIN_CHANGE,
            # ... a new secret for an access key's name, the old one valid for an overlap
            "RotateAccessKey": ADMIN_CHANGE,
            # service-password rotation (ADR 0025): admins set a collector's next password
            "SetCollectorPassword": ADMIN_CHANGE,
        },
    ),
    **_methods(
        "outpost.scheduler.v1.SchedulerService",
        {
            "CreateDiscovery": OPERATOR_CHANGE,
            "ListDiscoveries": VIEWER,
            "GetDiscovery": VIEWER,
            "DeleteDiscovery": OPERATOR_CHANGE,
            "CreateSchedule": OPERATOR_CHANGE,
            "ListSchedules": VIEWER,
            "DeleteSchedule": OPERATOR_CHANGE,
            "SetScheduleEnabled": OPERATOR_CHANGE,
            "StartDiscovery": OPERATOR_CHANGE,
            "ListJobRuns": VIEWER,
            # admins; and gateways, for a run a reconnected collector sends results of
            "GetJobRun": role(Role.VIEWER, also_services=("gateway",)),
            "CancelJobRun": OPERATOR_CHANGE,
            # admins; and gateways, for the polling interval they tell collectors
            "GetSettings": role(Role.VIEWER, also_services=("gateway",)),
            "UpdateSettings": ADMIN_CHANGE,
            # gateways: dispatch, claims, job updates, lease renewal
            "WatchDispatch": GATEWAY,
            "ClaimJobRuns": GATEWAY,
            "ReportJobUpdate": GATEWAY,
            "RenewLeases": GATEWAY,
        },
    ),
    **_methods(
        "outpost.gateway.v1.GatewayService",
        {"GetGatewayInfo": VIEWER, "ListSessions": VIEWER},
    ),
    **_methods(
        "outpost.gateway.v1.InventoryService",
        {"ListDevices": VIEWER, "GetDevice": VIEWER, "ListDeviceHistory": VIEWER},
    ),
    **_methods(
        "outpost.audit.v1.AuditService",
        {"ListAuditEvents": VIEWER},
    ),
}


def rule_for(method: str) -> Rule | None:
    """The rule of a full method name ("/pkg.Service/Method"); None: refuse."""
    return RULES.get(method)


def unruled(methods: Iterable[str]) -> list[str]:
    """The methods of `methods` that have no rule (what the descriptor test reports)."""
    return sorted(m for m in methods if m not in RULES)
