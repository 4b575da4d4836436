"""The rendered configuration boots: the charts' own commands, args and env run the product.

Both charts are rendered as an operator would install them; the migration hook Job, the
three Deployments and the collector StatefulSet's pod then run as local processes with
exactly what was rendered (tests/deploy/pods.py), against a PostgreSQL database of this
test. The collector announces itself, is registered with outpostctl (the admin token of
the chart's bootstrap Secret), and runs a discovery against a loopback listener whose
open port must reach the inventory. Every `OUTPOST_*` variable the charts set must be one
the service reads (a flag of its own, or named in its --help): a chart passing a setting
the code ignores fails here, and one passing a flag the code lacks fails at start.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from outpost.access_key import AccessKey, new_key_id, new_secret
from tests.conftest import fresh_postgres_database
from tests.deploy import pods
from tests.deploy.charts import COLLECTOR, COLLECTOR_REQUIRED, CONTROL_PLANE, of_kind, pod_specs, render
from tests.deploy.pods import Network, Pod, rendered_secrets
from tests.process_harness import BIN, wait_for

pytestmark = pytest.mark.postgres

PASSWORD = "chart-boot-password"
ADMIN_TOKEN = "chart-boot-admin-token-0123456789abcdef"
TARGET = "127.0.0.61"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_postgres_database("outpost_chart") as url:
        yield url


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((TARGET, 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def operator_secrets(database_url: str) -> dict[str, dict[str, bytes]]:
    """What docs/deploy.md tells the operator to create before `helm install`."""
    access_key = AccessKey(new_key_id(), new_secret())
    return {
        "outpost-db": {"url": database_url.encode()},
        "outpost-secret-key": {"registry-secret.key": os.urandom(32)},
        "outpost-admin": {"admin.token": ADMIN_TOKEN.encode()},
        "outpost-access-key": {"access.key": access_key.encode().encode()},
        "edge-lab": {"password": PASSWORD.encode()},
    }


def assert_every_env_is_read(objects: list[dict[str, Any]]) -> None:
    """Every OUTPOST_* variable a container gets is one its own program documents reading.

    `OUTPOST_<SERVICE>_<SETTING>` must match a flag of `outpost-<service>`; any other
    variable (`OUTPOST_ACCESS_KEY`, `HTTPS_PROXY`) must be named in the --help of the program
    the container runs, so a variable nothing reads fails here.
    """
    helps: dict[str, str] = {}

    def help_of(program: str) -> str:
        if program not in helps:
            helps[program] = subprocess.run(
                [str(BIN / program), "--help"], capture_output=True, text=True, check=True
            ).stdout
        return helps[program]

    for _, pod in pod_specs(objects):
        for container in pod.get("initContainers", []) + pod["containers"]:
            program = (container.get("command") or [""])[0]
            for var in container.get("env", []):
                if var["name"] == "POD_NAME":
                    continue
                if not var["name"].startswith("OUTPOST_"):  # HTTPS_PROXY, ...: named in the program's --help
                    assert program.startswith("outpost") and var["name"] in help_of(program), (
                        f"{container['name']} sets {var['name']}, which {program or 'its program'} does not read"
                    )
                    continue
                match = re.fullmatch(r"OUTPOST_([A-Z]+)_(\w+)", var["name"])
                if match is not None and match.group(1).lower() in {"registry", "scheduler", "gateway", "collector"}:
                    service, key = match.group(1).lower(), match.group(2)
                    text = help_of(f"outpost-{service}")
                    flag = "--" + key.lower().replace("_", "-")
                    assert re.search(rf"{flag}\b", text) or var["name"] in text, (
                        f"{container['name']} sets {var['name']}, which outpost-{service} does not read"
                    )
                    continue
                assert program.startswith("outpost"), f"{container['name']} sets {var['name']} for {program!r}"
                assert var["name"] in help_of(program), (
                    f"{container['name']} sets {var['name']}, which {program} does not read"
                )


def outpostctl(network: Network, *args: str, stdin: str | None = None) -> str:
    return pods.outpostctl(network, ADMIN_TOKEN, *args, stdin=stdin)


def test_rendered_charts_boot_register_a_collector_and_run_a_discovery(
    database: str, listener: int, tmp_path: Path
) -> None:
    secrets = operator_secrets(database)
    plane = render(
        CONTROL_PLANE,
        "outpost",
        set_values=[
            "database.existingSecret=outpost-db",
            "secretKey.existingSecret=outpost-secret-key",
            "bootstrap.adminToken.existingSecret=outpost-admin",
            "bootstrap.accessKey.existingSecret=outpost-access-key",
            "gateway.replicas=1",
            # PROXY protocol on, trusting a balancer that is not there: the collector dials
            # the TCP listener directly (from loopback) and keeps working (ADR 0026).
            "gateway.trustedProxies={192.0.2.1/32}",
            "gateway.proxyProtocol.enabled=true",
        ],
    )
    edge = render(
        COLLECTOR,
        "edge-lab",
        set_values=[
            "zone=lab",
            "servers[0]=tcp://outpost-gateway-public:6600",
            "credentials.existingSecret=edge-lab",
            # The control plane's bootstrap access key: the same Secret, as values.yaml says.
            "accessKey.existingSecret=outpost-access-key",
        ],
    )
    assert_every_env_is_read(plane + edge)
    secrets |= rendered_secrets(plane)
    network = Network(workdir=tmp_path)
    network.learn(plane)

    job = of_kind(plane, "Job")[0]
    assert "pre-install" in job["metadata"]["annotations"]["helm.sh/hook"]
    migrate = Pod("outpost-migrate", job["spec"]["template"]["spec"], tmp_path / "migrate", secrets, network)
    for container in migrate.spec["initContainers"] + migrate.spec["containers"]:
        migrate.run_to_completion(container)

    deployments = {d["metadata"]["name"]: d for d in of_kind(plane, "Deployment")}
    pods: list[Pod] = []
    try:
        for name in ("outpost-registry", "outpost-scheduler", "outpost-gateway"):
            spec = deployments[name]["spec"]["template"]["spec"]
            pod = Pod(f"{name}-0", spec, tmp_path / name, secrets, network)
            pods.append(pod.start())
            pod.wait_ready()

        statefulset = of_kind(edge, "StatefulSet")[0]
        claims = [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]]
        collector = Pod(
            "edge-lab-outpost-collector-0",
            statefulset["spec"]["template"]["spec"],
            tmp_path / "collector",
            secrets,
            network,
            claims=claims,
        )
        pods.append(collector.start())
        collector.wait_ready()
        status_file = collector.mounts["/run/outpost"] / "status.json"

        def collector_state(state: str) -> bool:
            collector.probe()
            return bool(json.loads(status_file.read_text()).get("state") == state)

        wait_for(lambda: collector_state("pending"), timeout=30, what="the collector pending")
        outpostctl(
            network,
            "collectors",
            "register",
            "edge-lab-outpost-collector-0",
            "--username",
            "svc",
            "--password-stdin",
            "--enable",
            stdin=PASSWORD + "\n",
        )
        wait_for(lambda: collector_state("enabled"), timeout=30, what="the collector enabled")

        outpostctl(
            network,
            "discoveries",
            "create",
            "chart",
            "--targets",
            TARGET,
            "--ports",
            str(listener),
            "--collector",
            "edge-lab-outpost-collector-0",
            "--probes",
            "tcp",
        )
        summary = json.loads(outpostctl(network, "discoveries", "run", "chart", "--wait", "--json"))
        assert summary["state"] == "succeeded", summary
        devices = json.loads(outpostctl(network, "devices", "list", "--json"))
        assert [(d["ip"], d["open_ports"], d["zone"]) for d in devices] == [(TARGET, [listener], "lab")]
        # The access key from the operator's Secret was registered at the registry's first start.
        keys = json.loads(outpostctl(network, "access-keys", "list", "--json"))
        assert [k["name"] for k in keys] == ["bootstrap"]
    except BaseException:
        for pod in pods:
            print(f"==== {pod.name}\n{pod.log()[-4000:]}")
        raise
    finally:
        for pod in reversed(pods):
            pod.stop()


def test_the_collectors_proxy_settings_are_ones_it_reads() -> None:
    edge = render(
        COLLECTOR,
        "edge-lab",
        set_values=[
            "zone=lab",
            "servers[0]=wss://gw.example:443/v1/agent",
            "credentials.existingSecret=edge-lab",
            "accessKey.existingSecret=outpost-access-key",
            "proxy.httpsProxy=http://proxy.example:3128",
            "proxy.httpProxy=http://proxy.example:3128",
            "proxy.noProxy=.internal.example\\,10.0.0.0/8",
        ],
    )
    assert_every_env_is_read(edge)
    with pytest.raises(AssertionError, match="ALL_PROXY, which outpost-collector does not read"):
        assert_every_env_is_read(
            render(
                COLLECTOR,
                "edge-lab",
                set_values=[*COLLECTOR_REQUIRED, "extraEnv[0].name=ALL_PROXY", "extraEnv[0].value=x"],
            )
        )


def test_a_setting_the_services_do_not_read_is_caught() -> None:
    objects = render(
        CONTROL_PLANE,
        "outpost",
        set_values=[
            "database.existingSecret=db",
            "secretKey.existingSecret=sk",
            "registry.extraEnv[0].name=OUTPOST_REGISTRY_LISTEN_BACKLOG",
            "registry.extraEnv[0].value=64",
        ],
    )
    with pytest.raises(AssertionError, match="OUTPOST_REGISTRY_LISTEN_BACKLOG, which outpost-registry does not read"):
        assert_every_env_is_read(objects)
