"""What service recognition costs per open port: the banner step with nmap's fingerprints vs without.

    .venv/bin/python bench/service_recognition_cost.py [--repeats 40] [--timeout 1.0]
        [--probes-file /usr/share/nmap/nmap-service-probes] [--json bench/results/service_recognition_cost.json]

Theory of operation
-------------------
A child process (this script with `--serve`) runs loopback servers from
`tests/peers/greeters.py` on 127.0.3.1, so their CPU is not charged to what is measured:
SMTP (Postfix greeting), FTP (vsftpd), POP3 (Dovecot), HTTP (an nginx page), HTTP that no
pattern names with a 60 KiB page (the worst case for matching), a Redis-like server
(answers inline commands, hangs up on an HTTP header as Redis does) and a silent port
(accepts, never speaks). Ports are ephemeral, so no probe is chosen by port number: what
is measured is the general path.

For each server, `grab_banner` (the collector's banner step, `services/collector/
discovery/banners.py`) runs `--repeats` times *plain* (no recognizer: today's behaviour
when the file is missing) and as many times *recognised* (nmap's database at intensity
7), alternating plain/recognised so both see the same machine noise. Each call is timed
from start to return with `time.perf_counter()`; the table gives the median and the p90
(nearest rank) per server and mode, the extra cost of recognition, and the median CPU
time of this process per call (`time.process_time()`: the servers run in the child).
The very first recognised call of each server (its patterns compiled lazily) is
reported apart as "first" and left out of the medians. Loading the file (parse), the
memory that costs, and the one-off check that compiles every pattern are measured once
at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from _discovery_report import percentile  # noqa: E402
from harness.machine import finish, machine, markdown_table  # noqa: E402

from services.collector.discovery import banners  # noqa: E402
from services.collector.discovery.recognition import RecognitionStats, ServiceRecognizer  # noqa: E402
from services.collector.discovery.service_probes import (  # noqa: E402
    DEFAULT_INTENSITY,
    DEFAULT_SERVICE_PROBES_FILE,
    load_service_probes,
)

HOST = "127.0.3.1"
KINDS = ("smtp", "ftp", "pop3", "http", "http-unknown", "redis", "silent")
# The worst case for matching: a web server no pattern names, with a 60 KiB page.
UNKNOWN_PAGE = b"<html><head><title>x</title></head><body>" + b"lorem ipsum dolor sit amet " * 2200 + b"</body></html>"
UNKNOWN_HTTP = (
    b"HTTP/1.1 200 OK\r\nServer: acme-unknown/9\r\nContent-Type: text/html\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n" % len(UNKNOWN_PAGE)
) + UNKNOWN_PAGE


def serve() -> None:
    """Child mode: start the servers, print their ports as JSON, serve until stdin closes."""
    from tests.peers.greeters import FTP_GREETING, POP3_GREETING, SMTP_GREETING, Greeters

    servers = Greeters()
    ports = {
        "smtp": servers.greeter(HOST, SMTP_GREETING),
        "ftp": servers.greeter(HOST, FTP_GREETING),
        "pop3": servers.greeter(HOST, POP3_GREETING, reply=b"-ERR unknown command\r\n"),
        "http": servers.http(HOST),
        "http-unknown": servers.http(HOST, UNKNOWN_HTTP),
        "redis": servers.redis(HOST),
        "silent": servers.silent(HOST),
    }
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    servers.close()


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


async def measure(ports: dict[str, int], recognizer: ServiceRecognizer, repeats: int, timeout: float) -> dict[str, Any]:
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        port = ports[kind]
        plain: list[float] = []
        recognised: list[float] = []
        stats = RecognitionStats()
        started = time.perf_counter()
        first = await banners.grab_banner(HOST, port, timeout, recognizer=recognizer, stats=stats)
        first_ms = (time.perf_counter() - started) * 1000
        plain_cpu: list[float] = []
        recognised_cpu: list[float] = []
        for _ in range(repeats):
            started, cpu = time.perf_counter(), time.process_time()
            await banners.grab_banner(HOST, port, timeout)
            plain.append((time.perf_counter() - started) * 1000)
            plain_cpu.append((time.process_time() - cpu) * 1000)
            started, cpu = time.perf_counter(), time.process_time()
            found = await banners.grab_banner(HOST, port, timeout, recognizer=recognizer, stats=stats)
            recognised.append((time.perf_counter() - started) * 1000)
            recognised_cpu.append((time.process_time() - cpu) * 1000)
        per_kind[kind] = {
            "service": found.service,
            "product": found.service_product,
            "version": found.service_version,
            "first_recognised_ms": round(first_ms, 2),
            "first_service": first.service,
            "plain_ms": [round(v, 3) for v in plain],
            "recognised_ms": [round(v, 3) for v in recognised],
            "plain_cpu_ms": [round(v, 3) for v in plain_cpu],
            "recognised_cpu_ms": [round(v, 3) for v in recognised_cpu],
            "probes_sent_per_port": round(stats.probes_sent / (repeats + 1), 2),
            "budget_exhausted": stats.budget_exhausted,
        }
    return per_kind


def row(kind: str, figures: dict[str, Any]) -> tuple[str, ...]:
    plain, recognised = figures["plain_ms"], figures["recognised_ms"]
    p50 = (percentile(plain, 50), percentile(recognised, 50))
    p90 = (percentile(plain, 90), percentile(recognised, 90))
    named = " ".join(filter(None, (figures["service"], figures["product"], figures["version"]))) or "-"
    return (
        kind,
        named,
        f"{p50[0]:.1f} / {p90[0]:.1f}",
        f"{p50[1]:.1f} / {p90[1]:.1f}",
        f"{p50[1] - p50[0]:+.1f}",
        f"{percentile(figures['plain_cpu_ms'], 50):.1f} / {percentile(figures['recognised_cpu_ms'], 50):.1f}",
        f"{figures['first_recognised_ms']:.1f}",
        f"{figures['probes_sent_per_port']:g}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=1.0, help="the discovery's per-probe timeout (default 1)")
    parser.add_argument("--probes-file", default=DEFAULT_SERVICE_PROBES_FILE)
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "service_recognition_cost.json")
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    wall = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "repeats": args.repeats, "timeout_s": args.timeout}
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    database = load_service_probes(args.probes_file)
    results["load"] = {
        "file": args.probes_file,
        "probes": len(database.probes),
        "patterns": database.pattern_count,
        "parse_s": round(time.perf_counter() - started, 3),
    }
    gc.collect()
    results["load"]["rss_parsed_mib"] = round(rss_mib() - before, 1)
    started = time.perf_counter()
    report = database.check_patterns()
    results["load"]["check_all_patterns_s"] = round(time.perf_counter() - started, 3)
    results["load"]["not_compiled"] = report.failed
    recognizer = ServiceRecognizer(database, DEFAULT_INTENSITY)

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        results["servers"] = asyncio.run(measure(ports, recognizer, args.repeats, args.timeout))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    gc.collect()
    results["load"]["rss_after_runs_mib"] = round(rss_mib() - before, 1)
    compiled = sum(1 for probe in database.probes for match in probe.matches if match._compiled)
    results["load"]["patterns_compiled_by_the_runs"] = compiled

    header = (
        "server",
        "recognised as",
        "plain p50 / p90 ms",
        "recognised p50 / p90 ms",
        "extra p50 ms",
        "CPU p50 ms plain / recognised",
        "first ms",
    )
    rows: list[tuple[str, ...]] = [(*header, "probes sent")]
    rows += [row(kind, figures) for kind, figures in results["servers"].items()]
    load = results["load"]
    table = markdown_table(rows) + (
        f"\n\nload: {load['probes']} probes, {load['patterns']} patterns parsed in {load['parse_s']} s "
        f"(+{load['rss_parsed_mib']} MiB RSS); checking every pattern once {load['check_all_patterns_s']} s, "
        f"{load['not_compiled']} not compiled; the runs compiled {compiled} patterns "
        f"(RSS +{load['rss_after_runs_mib']} MiB in all)"
    )
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finish(results, table, args.json, wall)


if __name__ == "__main__":
    main()
