"""The charts render, lint, validate against Kubernetes' schemas and keep the policies.

No cluster: `helm lint --strict`, `helm template` with the defaults and the example values
files, every object through kubernetes-validate (strict: an unknown field fails), then the
policies every release must keep, checked on the rendered objects.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.charts import (
    COLLECTOR,
    COLLECTOR_REQUIRED,
    CONTROL_PLANE,
    CONTROL_PLANE_REQUIRED,
    EXAMPLES,
    KUBERNETES_VERSION,
    ROOT,
    of_kind,
    pod_specs,
    render,
    run_helm,
)

RELEASES = {
    "control-plane-defaults": (CONTROL_PLANE, [], CONTROL_PLANE_REQUIRED),
    "control-plane-lab": (CONTROL_PLANE, [EXAMPLES / "lab-single.yaml"], []),
    "control-plane-ha-tls": (CONTROL_PLANE, [EXAMPLES / "ha-tls.yaml"], []),
    "collector-defaults": (COLLECTOR, [], COLLECTOR_REQUIRED),
    "collector-zone-icmp": (COLLECTOR, [EXAMPLES / "zone-icmp.yaml"], []),
}
# Custom resources have no schema in Kubernetes' OpenAPI document; their fields are checked below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Certificate"}
AGENT_PORTS = {50061, 8080, 6600}


@pytest.fixture(scope="module", params=sorted(RELEASES))
def release(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    chart, files, values = RELEASES[request.param]
    return request.param, render(chart, "rel", files, values)


@pytest.mark.parametrize("chart", [CONTROL_PLANE, COLLECTOR], ids=lambda c: c.name)
def test_charts_pass_helm_lint_strict(chart: Path) -> None:
    required = CONTROL_PLANE_REQUIRED if chart == CONTROL_PLANE else COLLECTOR_REQUIRED
    result = run_helm("lint", "--strict", str(chart), *(arg for v in required for arg in ("--set", v)))
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_every_rendered_object_is_valid_kubernetes(release: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = release
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_an_unknown_field() -> None:
    """Guards the check above: a misspelt field in a rendered object must not pass."""
    objects = render(CONTROL_PLANE, "rel", set_values=CONTROL_PLANE_REQUIRED)
    deployment = of_kind(objects, "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_long_running_container_is_non_root_read_only_with_probes_and_resources(
    release: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = release
    for workload, pod in pod_specs(objects):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod.get("automountServiceAccountToken") is False
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{workload['kind']} {workload['metadata']['name']} container {container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert set(context["capabilities"].get("add", [])) <= {"NET_RAW"}, where
            assert container["resources"]["requests"] and container["resources"]["limits"], where
        if workload["kind"] == "Job":
            continue  # runs to completion: nothing to probe
        for container in pod["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{workload['metadata']['name']}/{container['name']} has no {probe}"


def test_net_raw_only_when_icmp_is_enabled() -> None:
    def added(values: list[str]) -> list[str]:
        objects = render(COLLECTOR, "rel", set_values=COLLECTOR_REQUIRED + values)
        pod = of_kind(objects, "StatefulSet")[0]["spec"]["template"]["spec"]
        return list(pod["containers"][0]["securityContext"]["capabilities"].get("add", []))

    assert added([]) == []
    assert added(["icmp.enabled=true"]) == ["NET_RAW"]


def test_an_enrollment_token_secret_reaches_the_collector_only_when_set() -> None:
    """Zero-touch rollout (ADR 0022): the token comes from a Secret, never a plain value."""

    def token_env(values: list[str]) -> list[dict[str, Any]]:
        objects = render(COLLECTOR, "rel", set_values=COLLECTOR_REQUIRED + values)
        env = of_kind(objects, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        return [e for e in env if e["name"] == "OUTPOST_ENROLLMENT_TOKEN"]

    assert token_env([]) == []
    [env] = token_env(["enrollmentToken.existingSecret=lab-rollout"])
    assert env["valueFrom"]["secretKeyRef"] == {"name": "lab-rollout", "key": "enrollment.token"}


def test_proxy_values_become_the_collectors_proxy_variables() -> None:
    def proxy_env(values: list[str]) -> dict[str, Any]:
        objects = render(COLLECTOR, "rel", set_values=COLLECTOR_REQUIRED + values)
        env = of_kind(objects, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in env if e["name"].endswith("_PROXY")}

    assert proxy_env([]) == {}
    assert proxy_env(
        [
            "proxy.httpsProxy=http://proxy.example:3128",
            "proxy.httpProxy=http://proxy.example:8080",
            "proxy.noProxy=.internal.example\\,10.0.0.0/8",
        ]
    ) == {
        "HTTPS_PROXY": "http://proxy.example:3128",
        "HTTP_PROXY": "http://proxy.example:8080",
        "NO_PROXY": ".internal.example,10.0.0.0/8",
    }
    # A URL with credentials comes from a Secret, and wins over the plain value.
    assert proxy_env(["proxy.httpsProxy=http://proxy.example:3128", "proxy.existingSecret=lab-proxy"]) == {
        "HTTPS_PROXY": {"secretKeyRef": {"name": "lab-proxy", "key": "https-proxy"}}
    }


def test_control_plane_public_service_exposes_only_agent_ports_and_network_policies_exist(
    release: tuple[str, list[dict[str, Any]]],
) -> None:
    name, objects = release
    policies = of_kind(objects, "NetworkPolicy")
    assert policies, "no NetworkPolicy rendered"
    if not name.startswith("control-plane"):
        return
    public = [s for s in of_kind(objects, "Service") if s["metadata"]["labels"].get("outpost.dev/exposure") == "public"]
    assert 1 <= len(public) <= 2  # the TCP port may have its own (gateway.tcpService)
    for service in public:
        assert {p["port"] for p in service["spec"]["ports"]} <= AGENT_PORTS
    for service in of_kind(objects, "Service"):
        if service not in public:
            assert service["spec"]["type"] == "ClusterIP", service["metadata"]["name"]
    # Only the gateway's agent ports are open to any source; every other rule names its peers.
    components = {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policies}
    assert components == {"registry", "scheduler", "gateway"}
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            if "from" not in rule:
                assert {p["port"] for p in rule["ports"]} <= AGENT_PORTS, policy["metadata"]["name"]


def test_ha_example_has_tls_autoscaling_and_the_alerts() -> None:
    objects = render(CONTROL_PLANE, "rel", [EXAMPLES / "ha-tls.yaml"])
    assert of_kind(objects, "HorizontalPodAutoscaler")[0]["spec"]["minReplicas"] == 3
    assert of_kind(objects, "Certificate")[0]["spec"]["secretName"] == "rel-outpost-gateway-tls"
    gateway = next(d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == "rel-outpost-gateway")
    assert "--tls-cert=/etc/outpost/tls/tls.crt" in gateway["spec"]["template"]["spec"]["containers"][0]["args"]
    rules = of_kind(objects, "PrometheusRule")[0]["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "OutpostCollectorOffline",
        "OutpostIngestThrottled",
        "OutpostLeasesExpiring",
        "OutpostHandshakesRefused",
        "OutpostSpoolDropping",
    }
    assert of_kind(objects, "ServiceMonitor") and of_kind(objects, "ConfigMap")


def _exported_metric_names() -> set[str]:
    """Every series name the services' Prometheus registry can expose (imported, not grepped)."""
    import importlib

    from prometheus_client import REGISTRY

    for service in ("registry", "scheduler", "gateway"):
        importlib.import_module(f"services.{service}.metrics")
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    for family in REGISTRY.collect():
        if family.name.startswith("outpost_"):
            names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
    return names


def test_alerts_and_dashboard_use_metrics_the_services_export() -> None:
    """Every outpost_* series in the rules and the dashboard is one the services' metric registry exports."""
    import re

    exported = _exported_metric_names()
    assert "outpost_registry_collector_spool_dropped_batches" in exported
    objects = render(CONTROL_PLANE, "rel", [EXAMPLES / "ha-tls.yaml"])
    rules = of_kind(objects, "PrometheusRule")
    expressions = [r["expr"] for group in rules[0]["spec"]["groups"] for r in group["rules"]]
    used_by_rules = set(re.findall(r"outpost_[a-z_]+", " ".join(expressions)))
    assert used_by_rules and used_by_rules <= exported, used_by_rules - exported
    dashboard = str(of_kind(objects, "ConfigMap"))
    used_by_dashboard = set(re.findall(r"outpost_[a-z_]+", dashboard)) - {"outpost_json"}
    assert used_by_dashboard and used_by_dashboard <= exported, used_by_dashboard - exported


def test_the_alerts_cover_spool_drops_with_a_metric_that_exists() -> None:
    values = [*CONTROL_PLANE_REQUIRED, "metrics.prometheusRule.enabled=true"]
    rules = of_kind(render(CONTROL_PLANE, "rel", set_values=values), "PrometheusRule")[0]["spec"]["groups"][0]["rules"]
    spool = next(r for r in rules if r["alert"] == "OutpostSpoolDropping")
    assert "outpost_registry_collector_spool_dropped_batches" in spool["expr"]


def test_service_tokens_secret_holds_random_identities() -> None:
    objects = render(CONTROL_PLANE, "rel", set_values=CONTROL_PLANE_REQUIRED)
    secret = of_kind(objects, "Secret")[0]
    tokens = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(tokens) == {"gateway.token", "scheduler.token"}
    assert all(len(t) == 48 for t in tokens.values()) and len(set(tokens.values())) == 2


@pytest.mark.parametrize(
    ("chart", "values", "message"),
    [
        (CONTROL_PLANE, ["gateway.replicas=two"], "at '/gateway/replicas': got string, want integer"),
        (CONTROL_PLANE, ["gatway.replicas=2"], "additional properties 'gatway' not allowed"),
        (COLLECTOR, ["replicas=three"], "at '/replicas': got string, want integer"),
        (COLLECTOR, ["zones=lab"], "additional properties 'zones' not allowed"),
        (COLLECTOR, ["proxy.httpsProxy=https://proxy:3128"], "at '/proxy/httpsProxy'"),
        (COLLECTOR, ["proxy.socks=x"], "additional properties 'socks' not allowed"),
    ],
)
def test_values_schema_rejects_wrong_types_and_unknown_keys(chart: Path, values: list[str], message: str) -> None:
    required = CONTROL_PLANE_REQUIRED if chart == CONTROL_PLANE else COLLECTOR_REQUIRED
    args = ["template", "rel", str(chart), *(a for v in required + values for a in ("--set", v))]
    result = run_helm(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("chart", "values", "message"),
    [
        (CONTROL_PLANE, ["secretKey.existingSecret=sk"], "database.existingSecret"),
        (CONTROL_PLANE, ["database.existingSecret=db"], "secretKey.existingSecret"),
        (
            COLLECTOR,
            ["servers[0]=tcp://gw:6600", "credentials.existingSecret=pw", "accessKey.existingSecret=ak"],
            "zone is required",
        ),
        (
            COLLECTOR,
            ["zone=lab", "servers[0]=tcp://gw:6600", "credentials.existingSecret=pw"],
            "accessKey.existingSecret",
        ),
        (COLLECTOR, [*COLLECTOR_REQUIRED, "replicas=2", "name=edge-1"], "leave it empty with replicas > 1"),
    ],
)
def test_a_release_missing_what_it_needs_does_not_render(chart: Path, values: list[str], message: str) -> None:
    result = run_helm("template", "rel", str(chart), *(a for v in values for a in ("--set", v)), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_chart_readmes_values_tables_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chart_readme.py"), "--check"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def _gateway_args(objects: list[dict[str, Any]]) -> list[str]:
    gateway = next(d for d in of_kind(objects, "Deployment") if d["metadata"]["name"] == "rel-outpost-gateway")
    args: list[str] = gateway["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_proxy_protocol_and_trusted_proxies_reach_the_gateway_only_when_set() -> None:
    defaults = _gateway_args(render(CONTROL_PLANE, "rel", set_values=CONTROL_PLANE_REQUIRED))
    assert not [a for a in defaults if a.startswith(("--trusted-proxies", "--tcp-proxy-protocol"))]

    values = [
        *CONTROL_PLANE_REQUIRED,
        "gateway.trustedProxies={10.0.0.0/8,192.0.2.5}",
        "gateway.proxyProtocol.enabled=true",
    ]
    args = _gateway_args(render(CONTROL_PLANE, "rel", set_values=values))
    assert "--trusted-proxies=10.0.0.0/8,192.0.2.5" in args
    assert "--tcp-proxy-protocol" in args


def test_proxy_protocol_without_trusted_proxies_does_not_render() -> None:
    values = [*CONTROL_PLANE_REQUIRED, "gateway.proxyProtocol.enabled=true"]
    result = run_helm("template", "rel", str(CONTROL_PLANE), *(a for v in values for a in ("--set", v)), check=False)
    assert result.returncode != 0 and "gateway.proxyProtocol.enabled needs gateway.trustedProxies" in result.stderr


def test_the_ingress_keeps_a_polling_collector_on_one_gateway_unless_turned_off() -> None:
    values = [*CONTROL_PLANE_REQUIRED, "gateway.ingress.enabled=true", "gateway.ingress.host=gw.example"]
    ingress = of_kind(render(CONTROL_PLANE, "rel", set_values=values), "Ingress")[0]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    public = next(
        s
        for s in of_kind(render(CONTROL_PLANE, "rel", set_values=values), "Service")
        if s["metadata"]["name"].endswith("-public")
    )
    assert public["spec"]["sessionAffinity"] == "ClientIP"
    off = of_kind(
        render(CONTROL_PLANE, "rel", set_values=[*values, "gateway.ingress.sessionAffinity=false"]), "Ingress"
    )[0]
    assert "annotations" not in off["metadata"]


def test_a_separate_tcp_service_takes_the_tcp_port_off_the_public_one() -> None:
    values = [
        *CONTROL_PLANE_REQUIRED,
        "gateway.tcpService.enabled=true",
        "gateway.tcpService.annotations.example\\.com/proxy-protocol=v2",
    ]
    objects = render(CONTROL_PLANE, "rel", set_values=values)
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    assert {p["port"] for p in services["rel-outpost-gateway-public"]["spec"]["ports"]} == {50061, 8080}
    tcp = services["rel-outpost-gateway-tcp"]
    assert [p["port"] for p in tcp["spec"]["ports"]] == [6600]
    assert tcp["metadata"]["annotations"] == {"example.com/proxy-protocol": "v2"}
    assert tcp["metadata"]["labels"]["outpost.dev/exposure"] == "public"
    for obj in objects:
        if obj["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
