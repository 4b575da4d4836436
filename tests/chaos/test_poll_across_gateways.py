"""HTTP polling through one load balancer in front of two real gateways (issue 12, item 5).

A polling session lives in the memory of the gateway that opened it. Through a balancer
that spreads each request round robin (an Ingress without affinity), the second poll of
every session reaches the other gateway, which does not hold it: the session ends, the
collector starts another, and it never gets past the sealed handshake. Nothing is
stored and nothing is lost (no session ever carries results), but the collector loops,
so the gateways say why: the token names the gateway that issued it, and the other one
counts `polls_refused_total{reason="other_gateway"}` and logs `poll_misrouted`; the
collector logs what it was told (`poll_session_ended`).

With cookie affinity (the chart's Ingress default) every poll of a session reaches its
gateway: the collector is registered and checks in on one session. When that gateway
goes away, the balancer pins the next session to the other one and the collector carries
on there (the same recovery as a streaming collector's failover).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.database import ChaosDatabase
from tests.peers.http_balancer import HttpBalancer
from tests.process_harness import Collector, ControlPlane, Replica, wait_for

PASSWORD = "poll-two-gateways-Pa55"
POLL = 'transport="http_poll"'


@pytest.fixture
def plane(tmp_path: Path, chaos_database: ChaosDatabase) -> Iterator[ControlPlane]:
    control = ControlPlane(
        tmp_path / "server",
        chaos_database.url,
        gateway_count=2,
        gateway_args=["--check-minute-seconds", "1"],
    ).start()
    control.ctl("config", "set", "collector_check_minutes", "1")  # a check-in every second
    try:
        yield control
    finally:
        control.stop()


def metric(gateway: Replica, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://{gateway.ready['metrics']}/metrics", timeout=5).read().decode()
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def polling_collector(plane: ControlPlane, tmp_path: Path, balancer: HttpBalancer) -> Collector:
    return Collector(
        tmp_path, "edge-poll-lb", [f"http://{balancer.address}/v1/poll"], PASSWORD,
        access_key_file=plane.access_key_file,
    ).start()  # fmt: skip


def misrouted(plane: ControlPlane) -> float:
    return sum(metric(g, "outpost_gateway_polls_refused_total", 'reason="other_gateway"') for g in plane.gateways)


def test_without_affinity_a_polling_collector_never_gets_in_and_the_gateways_say_why(
    plane: ControlPlane, tmp_path: Path
) -> None:
    with HttpBalancer([g.ready["websocket"] for g in plane.gateways]) as balancer:
        collector = polling_collector(plane, tmp_path, balancer)
        try:
            wait_for(lambda: misrouted(plane) >= 5, 30, what="polls reaching the gateway without the session")
            assert collector.status().get("state") != "pending"
            assert "edge-poll-lb" not in plane.ctl("collectors", "list").stdout  # never got past the handshake
            logged = [e for g in plane.gateways for e in g.log_events() if e.get("event") == "poll_misrouted"]
            assert logged and "session affinity" in logged[0]["advice"]
            # The collector's side: the gateway's (unauthenticated) word, in its log.
            told = [e for e in collector.log_events() if e.get("event") == "poll_session_ended"]
            assert told and "session affinity" in told[0]["gateway_said"] and told[0]["authenticated"] is False
        finally:
            collector.stop()


def test_with_cookie_affinity_the_collector_stays_on_one_gateway_and_moves_when_it_goes(
    plane: ControlPlane, tmp_path: Path
) -> None:
    with HttpBalancer([g.ready["websocket"] for g in plane.gateways], affinity=True) as balancer:
        collector = polling_collector(plane, tmp_path, balancer)
        try:
            collector.wait_state("pending")
            plane.ctl(
                "collectors", "register", collector.name, "--username", collector.username, "--password-stdin",
                "--enable", stdin=PASSWORD + "\n",
            )  # fmt: skip
            first = collector.wait_state("enabled")
            holder = next(g for g in plane.gateways if metric(g, "outpost_gateway_sessions", POLL) > 0)
            opened = sum(metric(g, "outpost_gateway_sessions_opened_total", POLL) for g in plane.gateways)
            checked_in = metric(holder, "outpost_gateway_poll_interval_seconds_count")
            wait_for(
                lambda: metric(holder, "outpost_gateway_poll_interval_seconds_count") >= checked_in + 3,
                30,
                what="three more check-ins",
            )
            # Three check-ins later: the same session, on the same gateway, none misrouted.
            assert collector.status()["session_id"] == first["session_id"]
            assert sum(metric(g, "outpost_gateway_sessions_opened_total", POLL) for g in plane.gateways) == opened
            assert misrouted(plane) == 0

            holder.kill()
            other = next(g for g in plane.gateways if g is not holder)
            wait_for(
                lambda: metric(other, "outpost_gateway_sessions", POLL) == 1,
                60,
                what="the session on the other gateway",
            )
            moved = collector.wait_status(
                lambda s: s.get("state") == "enabled" and s.get("session_id") != first["session_id"],
                "enabled on a new session",
            )
            assert moved["server_instance"] == first["server_instance"]
        finally:
            collector.stop()
