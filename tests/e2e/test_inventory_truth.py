"""The inventory against independent oracles, as an operator changes the world between runs.

A scripted world on loopback addresses of its own (127.0.50.1, 127.0.53.1), on ports the
kernel picks, so nothing collides with other tests: TCP listeners that open and close,
nftables drop rules that make ports *filtered* (a table of this process's own, deleted in
a `finally`), a PTR server of our own whose name changes and then goes away (NXDOMAIN),
an HTTP server whose page title changes and then becomes empty, snmpd. After every run:

- each scanned port's state in `devices show --json` equals what `nmap -sT -n -Pn` says
  (open / closed / filtered; a port the inventory never knew open or filtered is closed);
- the hostname equals the PTR server's ("" once it answers NXDOMAIN);
- the device's history lists exactly the changes the script made, nothing more.

Scans use a short per-probe timeout (1.5 s): a filtered port costs that, and a loaded
machine still reads a page in time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_discovery_flow import enabled_collector
from tests.peers.dns import start_dns_server
from tests.peers.firewall import PortFilter
from tests.peers.greeters import SSH_GREETING, Greeters
from tests.peers.snmpd import SnmpAgent, snmpget, start_snmpd
from tests.peers.tcp import TcpListeners
from tests.peers.web import start_web_server
from tests.process_harness import Collector, ControlPlane

HOST = "127.0.50.1"
WORLD = "127.0.53.1"
MOVER_FROM, MOVER_TO = "127.0.54.1", "127.0.54.2"
SWAPPED = "127.0.55.1"
SNMP_ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
TIMEOUT_MS = "1500"


@pytest.fixture
def port_filter() -> Iterator[PortFilter]:
    """Drop rules in a table of this test process's own, deleted afterwards."""
    if shutil.which("nft") is None:
        pytest.skip("nft (nftables) is not installed: filtered ports are made with nftables drop rules")
    rules = PortFilter()
    try:
        yield rules
    finally:
        rules.close()


@pytest.fixture
def listeners() -> Iterator[TcpListeners]:
    made = TcpListeners()
    try:
        yield made
    finally:
        made.close()


def nmap_states(host: str, ports: list[int]) -> dict[int, str]:
    """The oracle: each port's state as `nmap -sT -n -Pn` sees it."""
    out = subprocess.run(
        ["nmap", "-sT", "-n", "-Pn", "-p", ",".join(map(str, ports)), "-oX", "-", host],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    states = {
        int(port.get("portid", "0")): port.find("state").get("state", "")  # type: ignore[union-attr]
        for port in ET.fromstring(out).iter("port")
    }
    assert set(states) == set(ports), out
    return states


def device(plane: ControlPlane, ip: str = HOST) -> dict[str, Any]:
    return dict(json.loads(plane.ctl("devices", "show", ip, "--json").stdout))


def run(plane: ControlPlane, name: str) -> dict[str, Any]:
    summary = dict(json.loads(plane.ctl("discoveries", "run", name, "--wait", "--json").stdout))
    assert summary["state"] == "succeeded", summary
    return summary


def inventory_states(shown: dict[str, Any], ports: list[int]) -> dict[int, str]:
    """Each scanned port's state in the inventory; one it never knew open or filtered is closed."""
    known = {s["port"]: s["state"] for s in shown["services"] if s["protocol"] == "tcp"}
    return {port: known.get(port, "closed") for port in ports}


def changes_by_run(shown: dict[str, Any]) -> list[list[tuple[str, str, str]]]:
    """The history as (field, old, new), one sorted list per job run, oldest run first."""
    runs: dict[str, list[tuple[str, str, str]]] = {}
    for change in shown["history"]:
        runs.setdefault(change["job_run_id"], []).append((change["field"], change["old_value"], change["new_value"]))
    return [sorted(changes) for changes in runs.values()]


def assert_ports_equal_nmap(shown: dict[str, Any], host: str, ports: list[int]) -> dict[int, str]:
    oracle = nmap_states(host, ports)
    assert inventory_states(shown, ports) == oracle
    assert sorted(shown["open_ports"]) == sorted(p for p, state in oracle.items() if state == "open")
    return oracle


def test_the_inventory_equals_the_world_after_every_run(
    control_plane: ControlPlane, tmp_path: Path, port_filter: PortFilter, listeners: TcpListeners
) -> None:
    web = start_web_server(WORLD, title="First page")
    names = start_dns_server({WORLD: "alpha.truth.test."})
    collector = None
    try:
        flaps = listeners.open(WORLD)  # open -> closed -> filtered
        hides = listeners.open(WORLD)  # open -> filtered -> open
        opens = listeners.reserve(WORLD)  # closed -> open
        never = listeners.reserve(WORLD)  # closed throughout: never stored
        ports = sorted([flaps, hides, opens, never, web.port])
        collector = enabled_collector(control_plane, tmp_path, "edge-world")
        control_plane.ctl(
            "discoveries",
            "create",
            "world",
            "--targets",
            WORLD,
            "--ports",
            ",".join(map(str, ports)),
            "--probes",
            "tcp,dns,banners",
            "--dns-resolver",
            f"{names.host}:{names.port}",
            "--timeout-ms",
            TIMEOUT_MS,
            "--collector",
            "edge-world",
        )
        expected: list[list[tuple[str, str, str]]] = []

        def check(hostname: str, title: str | None, changes: list[tuple[str, str, str]]) -> dict[str, Any]:
            run(control_plane, "world")
            shown = device(control_plane, WORLD)
            assert_ports_equal_nmap(shown, WORLD, ports)
            assert shown["hostname"] == hostname
            [http] = [s for s in shown["services"] if s["port"] == web.port]
            assert http["details"].get("http.title") == title
            expected.append(sorted(changes))
            assert changes_by_run(shown) == expected
            return shown

        check("alpha.truth.test", "First page", [("created", "", WORLD)])

        listeners.shut(WORLD, flaps)
        port_filter.drop(WORLD, hides)
        listeners.open(WORLD, opens)
        web.set_title("Second page")
        names.set_names({WORLD: "beta.truth.test."})
        check(
            "beta.truth.test",
            "Second page",
            [
                ("hostname", "alpha.truth.test", "beta.truth.test"),
                (f"port.{flaps}", "open", "closed"),
                (f"port.{hides}", "open", "filtered"),
                (f"port.{opens}", "", "open"),
                (f"port.{web.port}.http.title", "First page", "Second page"),
            ],
        )

        port_filter.drop(WORLD, flaps)
        port_filter.allow(WORLD, hides)
        web.set_title("")
        names.set_names({})
        shown = check(
            "",
            None,
            [
                ("hostname", "beta.truth.test", ""),
                (f"port.{flaps}", "closed", "filtered"),
                (f"port.{hides}", "filtered", "open"),
                (f"port.{web.port}.http.title", "Second page", ""),
            ],
        )

        # The host goes silent (every port dropped): it is not seen, and nothing changes but
        # its missed-runs counter (the lifecycle's evidence that a run covered it).
        for port in ports:
            port_filter.drop(WORLD, port)
        assert run(control_plane, "world")["devices_found"] == 0
        after = device(control_plane, WORLD)
        assert after.pop("missed_runs") == shown.pop("missed_runs") + 1
        assert after == shown
    finally:
        if collector is not None:
            collector.stop()
        names.stop()
        web.stop()


def test_runs_without_the_tcp_probe_after_a_tcp_run_change_no_port(
    control_plane: ControlPlane, tmp_path: Path, port_filter: PortFilter, listeners: TcpListeners
) -> None:
    open_ports = [listeners.open(HOST), listeners.open(HOST)]
    filtered = listeners.open(HOST)
    port_filter.drop(HOST, filtered)
    closed = socket.socket()
    closed.bind((HOST, 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    ports = [*open_ports, filtered, closed_port]
    agent = start_snmpd(tmp_path / "snmpd", HOST, sys_name="truth-switch")
    collector = _collector_or_stop(agent, control_plane, tmp_path, "edge-truth")
    try:
        community = tmp_path / "community"
        community.write_text(agent.community + "\n")
        control_plane.ctl("credentials", "add", "truth-snmp", "--type", "snmp-v2c", "--community-file", str(community))
        common = ["--targets", HOST, "--ports", ",".join(map(str, ports)), "--collector", "edge-truth"]
        common += ["--timeout-ms", TIMEOUT_MS]
        control_plane.ctl("discoveries", "create", "ports", *common, "--probes", "tcp")
        control_plane.ctl("discoveries", "create", "sweep", *common, "--probes", "icmp")
        control_plane.ctl("discoveries", "create", "names", *common, "--probes", "dns")
        control_plane.ctl(
            "discoveries",
            "create",
            "snmp-only",
            *common,
            "--probes",
            "snmp",
            "--snmp-credential",
            "truth-snmp",
            "--snmp-port",
            str(agent.port),
        )

        run(control_plane, "ports")
        after_tcp = device(control_plane)
        oracle = assert_ports_equal_nmap(after_tcp, HOST, ports)
        assert oracle == {open_ports[0]: "open", open_ports[1]: "open", filtered: "filtered", closed_port: "closed"}

        run(control_plane, "sweep")
        run(control_plane, "names")
        run(control_plane, "snmp-only")

        now = device(control_plane)
        assert now["facts"]["snmp.sys_name"] == "truth-switch"  # the SNMP-only run did see the host
        assert_ports_equal_nmap(now, HOST, ports)
        assert now["services"] == after_tcp["services"]
        port_changes = [c for c in now["history"] if c["field"].startswith("port.")]
        assert port_changes == [c for c in after_tcp["history"] if c["field"].startswith("port.")]
    finally:
        collector.stop()
        agent.stop()


def test_a_host_that_moves_to_another_address_is_the_same_device(control_plane: ControlPlane, tmp_path: Path) -> None:
    """snmpd moves from one address to another with its engine id:
    the inventory keeps one device, records exactly `ip` old -> new, and has nothing left at
    the old address. snmpget is the oracle for the engine id."""
    agent = start_snmpd(tmp_path / "snmpd", MOVER_FROM, sys_name="mover", engine_id_text="outpost-mover")
    collector = _collector_or_stop(agent, control_plane, tmp_path, "edge-mover")
    try:
        community = tmp_path / "community"
        community.write_text(agent.community + "\n")
        control_plane.ctl("credentials", "add", "mover-snmp", "--type", "snmp-v2c", "--community-file", str(community))
        control_plane.ctl(
            "discoveries",
            "create",
            "movers",
            "--targets",
            f"{MOVER_FROM}-2",
            "--collector",
            "edge-mover",
            "--probes",
            "snmp",
            "--snmp-credential",
            "mover-snmp",
            "--snmp-port",
            str(agent.port),
            "--timeout-ms",
            TIMEOUT_MS,
        )
        engine_id = snmpget(agent, [SNMP_ENGINE_ID])[SNMP_ENGINE_ID]
        assert run(control_plane, "movers")["devices_found"] == 1
        before = device(control_plane, MOVER_FROM)
        assert before["facts"]["snmp.sys_name"] == "mover"

        agent.stop()
        agent = start_snmpd(
            tmp_path / "snmpd",
            MOVER_TO,
            sys_name="mover",
            port=agent.port,
            community=agent.community,
            engine_id_text="outpost-mover",
        )
        assert snmpget(agent, [SNMP_ENGINE_ID])[SNMP_ENGINE_ID] == engine_id  # the same agent, elsewhere

        assert run(control_plane, "movers")["devices_found"] == 1
        after = device(control_plane, MOVER_TO)
        assert after["id"] == before["id"]
        assert after["snmp_engine_id"] == before["snmp_engine_id"] != ""
        # Restarting snmpd is a reboot: its uptime may have gone down, which the history
        # records (docs/inventory.md, volatile facts). Besides that, only the address moved.
        [moved] = changes_by_run(after)[1:]
        uptime = [c for c in moved if c[0] == "facts.snmp.sys_uptime_seconds"]
        assert all(int(new) < int(old) for _, old, new in uptime)
        assert [c for c in moved if c not in uptime] == [("ip", MOVER_FROM, MOVER_TO)]
        listed = json.loads(control_plane.ctl("devices", "list", "--json").stdout)
        assert [d["ip"] for d in listed if d["ip"] in (MOVER_FROM, MOVER_TO)] == [MOVER_TO]
    finally:
        collector.stop()
        agent.stop()


def _collector_or_stop(agent: SnmpAgent, plane: ControlPlane, tmp_path: Path, name: str) -> Collector:
    """An enabled collector; snmpd is stopped if it never gets there (the test's `finally` is not reached)."""
    try:
        return enabled_collector(plane, tmp_path, name)
    except BaseException:
        agent.stop()
        raise


def nmap_service(host: str, port: int) -> str:
    """The oracle for a port's service name: `nmap -sV -n -Pn` (light version probing)."""
    out = subprocess.run(
        ["nmap", "-sT", "-sV", "--version-light", "-n", "-Pn", "-p", str(port), "-oX", "-", host],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    ).stdout
    service = ET.fromstring(out).find(".//port/service")
    return "" if service is None else service.get("name", "")


def test_another_service_on_the_same_port_leaves_nothing_of_the_old_one(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """A web server (title "Five") gives way to an SSH server on the same port: the service
    is what nmap -sV says each time, no http.* detail outlives the web server, and the
    history of the second run is exactly the difference between the two states."""
    first, second = Greeters(), Greeters()
    page = (
        b"HTTP/1.0 200 OK\r\nServer: nginx/1.18.0\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
        b"<html><head><title>Five</title></head><body>five</body></html>\n"
    )
    port = first.http(SWAPPED, page)
    collector = enabled_collector(control_plane, tmp_path, "edge-swap")
    try:
        control_plane.ctl(
            "discoveries",
            "create",
            "swap",
            "--targets",
            SWAPPED,
            "--ports",
            str(port),
            "--collector",
            "edge-swap",
            "--probes",
            "tcp,banners",
            "--timeout-ms",
            TIMEOUT_MS,
        )
        run(control_plane, "swap")
        [web] = device(control_plane, SWAPPED)["services"]
        assert web["service"] == nmap_service(SWAPPED, port) == "http"
        assert web["details"]["http.title"] == "Five"

        first.close()
        second.greeter(SWAPPED, SSH_GREETING, port=port)
        run(control_plane, "swap")
        shown = device(control_plane, SWAPPED)
        [ssh] = shown["services"]
        assert ssh["service"] == nmap_service(SWAPPED, port) == "ssh"
        assert ssh["banner"].startswith("SSH-2.0-OpenSSH_8.9p1")
        assert not [name for name in ssh["details"] if name.startswith("http.")]

        field = f"port.{port}"
        expected = {(f"{field}.service", "http", "ssh")}
        if web["banner"] != ssh["banner"]:
            expected.add((f"{field}.banner", web["banner"], ssh["banner"]))
        for name in web["details"].keys() | ssh["details"].keys():
            old, new = web["details"].get(name, ""), ssh["details"].get(name, "")
            if old != new:
                expected.add((f"{field}.{name}", old, new))
        assert (f"{field}.http.title", "Five", "") in expected
        assert set(changes_by_run(shown)[-1]) == expected
    finally:
        collector.stop()
        first.close()
        second.close()
