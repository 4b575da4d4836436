"""`outpostctl discoveries ...`: what to scan and where: create, list, show, remove, run.

A discovery names its targets, ports and probes, the credentials its SNMP and SSH probes
log in with, and where it runs: one collector by name, or any collector of a zone. It
runs on a schedule (`outpostctl schedules`) or now (`discoveries run`). Every spec is
checked here before it is sent (`scan_spec`), so a typo names the offending item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Group
from rich.text import Text

from outpostctl import jobs, listing, output, scan_spec
from outpostctl.endpoints import endpoints_of
from outpostctl.errors import CommandError
from outpostctl.job_wait import wait_for_run
from outpostctl.options import JsonFlag, Yes, confirm_removal, whole_number
from outpostctl.scheduler_client import Discovery, JobRun, SchedulerClient

app = typer.Typer(help="Discoveries: create, list, show, remove, run now.", no_args_is_help=True)

DiscoveryName = Annotated[str, typer.Argument(metavar="NAME", help="The discovery's name.")]
UINT32_MAX = 2**32 - 1
PORT_MAX = 65_535
RECENT_RUNS = 5

_T = TypeVar("_T")
_V = TypeVar("_V")


@app.command("create")
def create_discovery(
    ctx: typer.Context,
    name: DiscoveryName,
    *,
    targets: Annotated[
        list[str],
        typer.Option(
            "--targets",
            metavar="CIDR[,...]",
            help="What to scan: CIDRs, addresses, ranges (10.0.0.5-10.0.0.20), host names. Comma-separated.",
        ),
    ],
    ports: Annotated[
        list[str] | None,
        typer.Option(
            "--ports",
            metavar="PORTS",
            help="TCP ports to probe, with ranges: 22,80,443,8000-8010 (needed when the tcp probe runs).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", metavar="CIDR[,...]", help="Addresses never to touch.")
    ] = None,
    probes: Annotated[
        list[str] | None,
        typer.Option(
            "--probes", metavar="PROBE[,...]", help=f"Of {','.join(scan_spec.PROBES)}; default: the server's set."
        ),
    ] = None,
    snmp_credential: Annotated[
        str, typer.Option("--snmp-credential", metavar="NAME", help="Credential of the snmp probe.")
    ] = "",
    ssh_credential: Annotated[
        str, typer.Option("--ssh-credential", metavar="NAME", help="Credential of the ssh probe.")
    ] = "",
    collector: Annotated[str, typer.Option("--collector", metavar="NAME", help="Run on this collector.")] = "",
    zone: Annotated[str, typer.Option("--zone", metavar="ZONE", help="Run on any collector of this zone.")] = "",
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", metavar="N", parser=whole_number(1, UINT32_MAX), help="Connections in flight."),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option("--rate", metavar="N", parser=whole_number(1, UINT32_MAX), help="New connections per second."),
    ] = None,
    timeout_ms: Annotated[
        int | None,
        typer.Option("--timeout-ms", metavar="N", parser=whole_number(1, UINT32_MAX), help="Per-probe timeout, ms."),
    ] = None,
    dns_resolver: Annotated[
        str | None, typer.Option("--dns-resolver", metavar="HOST:PORT", help="DNS server for reverse lookups.")
    ] = None,
    snmp_port: Annotated[
        int | None,
        typer.Option(
            "--snmp-port",
            metavar="N",
            parser=whole_number(1, PORT_MAX),
            help="UDP port of the snmp probe; default 161.",
        ),
    ] = None,
    allow_unknown: Annotated[
        bool,
        typer.Option(
            "--allow-unknown",
            help="Accept a collector or zone the registry does not know yet (refused by default: a typo's runs wait "
            "forever).",
        ),
    ] = False,
    ssh_port: Annotated[
        int | None,
        typer.Option(
            "--ssh-port", metavar="N", parser=whole_number(1, PORT_MAX), help="TCP port of the ssh audit; default 22."
        ),
    ] = None,
) -> None:
    """Create a discovery. Give exactly one of --collector and --zone; unset limits use the server's defaults."""
    if bool(collector) == bool(zone):
        raise typer.BadParameter(
            "give exactly one of --collector NAME or --zone ZONE", param_hint="--collector / --zone"
        )
    discovery = Discovery(
        name=name,
        targets=_parsed(scan_spec.parse_targets, targets, "--targets"),
        exclusions=_parsed(scan_spec.parse_targets, exclude or [], "--exclude"),
        ports=_parsed(scan_spec.parse_ports, ports, "--ports") if ports else [],
        probes=_parsed(scan_spec.parse_probes, probes or [], "--probes"),
        snmp_credential=snmp_credential,
        ssh_credential=ssh_credential,
        collector=collector,
        zone=zone,
        concurrency=concurrency or 0,
        rate_per_second=rate or 0,
        timeout_ms=timeout_ms or 0,
        dns_resolver=_parsed(scan_spec.parse_resolver, dns_resolver, "--dns-resolver") if dns_resolver else "",
        snmp_port=snmp_port or 0,
        ssh_port=ssh_port or 0,
    )
    if not discovery.targets:
        raise typer.BadParameter("give at least one target", param_hint="--targets")
    _check_credentials_match_probes(discovery)
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        created = scheduler.create_discovery(discovery, allow_unknown=allow_unknown)
    label = output.safe(created.name or name)
    output.print_line(
        f"discovery '{label}' created: {len(created.targets)} target(s), {len(created.ports)} port(s), "
        f"runs on {_where(created)}; run it now with `outpostctl discoveries run {label}`"
    )


@app.command("list")
def list_discoveries(
    ctx: typer.Context, limit: listing.Limit = None, page_token: listing.PageToken = "", as_json: JsonFlag = False
) -> None:
    """List discoveries by name, every page: targets, ports, probes and where each runs."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        listing.print_rows(
            listing.Listing(scheduler.discoveries_page, limit=limit, page_token=page_token),
            noun="discoveries",
            headers=["NAME", "RUNS ON", "TARGETS", "PORTS", "PROBES", "CREDENTIALS", "CREATED"],
            row=lambda d: [
                d.name,
                Text(_where(d)),
                ",".join(d.targets),
                scan_spec.ports_text(d.ports),
                ",".join(d.probes) or "defaults",
                ",".join(c for c in (d.snmp_credential, d.ssh_credential) if c) or "-",
                output.ago(d.created_at),
            ],
            as_json=as_json,
            empty="no discoveries",
            truncate=["TARGETS", "PORTS"],
        )


@app.command("show")
def show_discovery(ctx: typer.Context, name: DiscoveryName, as_json: JsonFlag = False) -> None:
    """Show one discovery in full, and its latest runs."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        d = scheduler.get_discovery(name)
        if as_json:
            output.print_json(d)
            return
        runs = _recent_runs(scheduler, d.name or name)
    # Non-standard probe ports only: most discoveries use 161 and 22 and need no line for them.
    probe_ports = [(label, str(port)) for label, port in (("snmp port", d.snmp_port), ("ssh port", d.ssh_port)) if port]
    details = output.fields(
        [
            ("name", d.name),
            ("runs on", Text(_where(d))),
            ("targets", ", ".join(d.targets)),
            ("excluded", ", ".join(d.exclusions) or "-"),
            ("ports", scan_spec.ports_text(d.ports)),
            ("probes", ", ".join(d.probes) or "the server's defaults"),
            ("snmp credential", d.snmp_credential or "-"),
            ("ssh credential", d.ssh_credential or "-"),
            *probe_ports,
            ("concurrency", _limit(d.concurrency)),
            ("rate", _limit(d.rate_per_second, " per second")),
            ("probe timeout", _limit(d.timeout_ms, " ms")),
            ("run deadline", _limit(d.deadline_seconds, " s")),
            ("dns resolver", d.dns_resolver or "the collector's own"),
            ("created", output.moment(d.created_at)),
        ]
    )
    if not runs:
        output.stdout.print(Group(details, Text(""), Text("no runs yet")))
        return
    output.stdout.print(Group(details, Text(""), Text("latest runs", style="bold"), jobs.runs_table(runs)))


@app.command("remove")
def remove_discovery(ctx: typer.Context, name: DiscoveryName, yes: Yes = False) -> None:
    """Remove a discovery; runs already recorded stay in `jobs list`."""
    confirm_removal(f"Remove discovery '{output.safe(name)}'?", yes=yes)
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        scheduler.delete_discovery(name)
    output.print_line(f"discovery '{output.safe(name)}' removed")


@app.command("run")
def run_discovery(
    ctx: typer.Context,
    name: DiscoveryName,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run to end, with a progress bar on a terminal.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a discovery now. With --wait, exit 0 only if the run succeeded; Ctrl-C stops waiting, not the run."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        run = scheduler.start_discovery(name)
        if wait:
            run = wait_for_run(scheduler, run)
    if as_json:
        output.print_json(run)
    elif wait:
        output.stdout.print(output.fields(jobs.summary_fields(run)))
    else:
        run_id = output.safe(run.id)
        output.print_line(
            f"job run {run_id} {output.safe(run.state)} for discovery '{output.safe(run.discovery or name)}'; "
            f"follow it with `outpostctl jobs show {run_id}`"
        )
    if wait and run.state != "succeeded":
        raise typer.Exit(1)


def _parsed(parse: Callable[[_V], _T], value: _V, flag: str) -> _T:
    """`parse(value)`, a usage error naming `flag` if it refuses."""
    try:
        return parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=flag) from None


def _check_credentials_match_probes(d: Discovery) -> None:
    """A credential for a probe that will not run is a mistake; with default probes, trust the server."""
    if not d.probes:
        return
    for probe, credential, flag in (
        ("snmp", d.snmp_credential, "--snmp-credential"),
        ("ssh", d.ssh_credential, "--ssh-credential"),
    ):
        if credential and probe not in d.probes:
            raise typer.BadParameter(
                f"{flag} is used only by the {probe} probe: add {probe} to --probes", param_hint=flag
            )


def _recent_runs(scheduler: SchedulerClient, name: str) -> list[JobRun]:
    """The latest runs, for `show`; the discovery itself must not fail for them."""
    try:
        runs, _ = scheduler.job_runs_page(discovery=name, page_size=RECENT_RUNS)
        return runs
    except CommandError:
        return []


def _where(d: Discovery) -> str:
    if d.collector:
        return f"collector {output.safe(d.collector)}"
    if d.zone:
        return f"zone {output.safe(d.zone)}"
    return "-"


def _limit(value: int, unit: str = "") -> str:
    return f"{value}{unit}" if value else "the server's default"
