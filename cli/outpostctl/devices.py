"""`outpostctl devices ...`: the inventory the collectors built: list, show and history.

A device is keyed by its IP within a zone (the same private address can exist in two
zones). `show` adds every port the device ever had open or filtered with its state now
("open", "closed", "filtered") and details, every fact, and the device's newest history:
which field changed from what to what, when, and in which job run; when older entries exist
it says how many, and `history` pages through all of them. `list` leaves retired devices
out (not seen for the gateway's retirement rule) unless `--include-retired`, filters by
zone, network, open port, service and last sighting, and prints every page as it arrives
(`listing.py`; `--limit N` stops early and says when more exist).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from outpostctl import listing, output, scan_spec
from outpostctl.endpoints import endpoints_of
from outpostctl.gateway_client import Device, DeviceChange, DeviceDetail, DeviceFilter, GatewayClient
from outpostctl.options import JsonFlag, whole_number

app = typer.Typer(help="The device inventory: list, show, history.", no_args_is_help=True)

Zone = Annotated[str, typer.Option("--zone", metavar="ZONE", help="Only this zone.")]


IncludeRetired = Annotated[
    bool, typer.Option("--include-retired", help="Also list retired devices (not seen for the retirement rule).")
]
HISTORY_COUNT_CAP = 10_000
"""`show` counts the older history entries up to this many, then says "10,000+"."""


@app.command("list")
def list_devices(
    ctx: typer.Context,
    zone: Zone = "",
    include_retired: IncludeRetired = False,
    *,
    cidr: Annotated[
        str, typer.Option("--cidr", metavar="NETWORK", help="Only addresses inside this network (10.0.0.0/24).")
    ] = "",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", parser=whole_number(1, 65535), help="Only devices with this port open."),
    ] = 0,
    service: Annotated[
        str,
        typer.Option("--service", metavar="NAME", help="Only devices with an open port running this service (ssh)."),
    ] = "",
    seen_since: Annotated[
        str,
        typer.Option(
            "--seen-since",
            metavar="WHEN",
            help="Only devices seen since: a duration back (1h, 7d) or a time (ISO-8601).",
        ),
    ] = "",
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """List devices in (zone, IP) order, every page: address, zone, host name, open ports, last seen."""
    where = DeviceFilter(
        zone=zone,
        include_retired=include_retired,
        cidr=cidr.strip(),
        port=port,
        service=service.strip(),
        seen_since=listing.parse_since(seen_since, "--seen-since") if seen_since.strip() else None,
    )
    headers = ["IP", "ZONE", "HOSTNAME", "OPEN PORTS", "MAC", "LAST SEEN"] + (["RETIRED"] if include_retired else [])

    def row(d: Device) -> list[str]:
        return [
            d.ip,
            d.zone,
            d.hostname or "-",
            scan_spec.ports_text(d.open_ports) or "-",
            ",".join(d.mac_addresses) or "-",
            output.ago(d.last_seen),
        ] + ([output.ago(d.retired_at) if d.retired else "-"] if include_retired else [])

    with GatewayClient(endpoints_of(ctx)) as gateway:
        pages = listing.Listing(
            lambda size, token: gateway.list_devices_page(where, size, token), limit=limit, page_token=page_token
        )
        listing.print_rows(
            pages,
            noun="devices",
            headers=headers,
            row=row,
            as_json=as_json,
            empty=f"no devices in zone '{output.safe(zone)}'" if zone else "no devices",
            truncate=["OPEN PORTS"],
        )
    if where.seen_since is not None and pages.more:
        output.print_note(f"(to continue, pass --seen-since {output.iso(where.seen_since)} with the token)")


@app.command("show")
def show_device(
    ctx: typer.Context,
    ip: Annotated[str, typer.Argument(metavar="IP", help="The device's IP address.")],
    zone: Annotated[
        str, typer.Option("--zone", metavar="ZONE", help="Its zone; needed when the IP exists in several.")
    ] = "",
    as_json: JsonFlag = False,
) -> None:
    """Show one device: ports with details, facts, and its history of changes."""
    try:
        address = str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise typer.BadParameter(f"'{ip}' is not an IP address", param_hint="IP") from None
    with GatewayClient(endpoints_of(ctx)) as gateway:
        detail = gateway.get_device(address, zone)
        older, beyond = (
            gateway.device_history(address, zone, limit=HISTORY_COUNT_CAP, page_token=detail.history_next_page_token)
            if detail.history_next_page_token
            else ([], False)
        )
    if as_json:
        output.print_json(
            {
                **output.plain(detail.device),
                "history": output.plain(detail.history),
                "history_next_page_token": detail.history_next_page_token,
            }
        )
    else:
        output.stdout.print(Group(*device_sections(detail)))
    if older:
        more = f"{len(older):,}{'+' if beyond else ''}"
        zone_flag = f" --zone {output.safe(zone)}" if zone else ""
        note = f"… {more} more: outpostctl devices history {address}{zone_flag}"
        if as_json:
            output.print_note(note)
        else:
            output.print_line(note, style="dim")


@app.command("history")
def device_history(
    ctx: typer.Context,
    ip: Annotated[str, typer.Argument(metavar="IP", help="The device's IP address.")],
    zone: Annotated[
        str, typer.Option("--zone", metavar="ZONE", help="Its zone; needed when the IP exists in several.")
    ] = "",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N entries; default: every entry.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every history entry of one device (oldest first), fetched page by page."""
    try:
        address = str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        raise typer.BadParameter(f"'{ip}' is not an IP address", param_hint="IP") from None
    with GatewayClient(endpoints_of(ctx)) as gateway:
        newest_first, more = gateway.device_history(address, zone, limit=limit)
    changes = list(reversed(newest_first))
    if as_json:
        output.print_json(changes)
    elif changes:
        output.stdout.print(_history_table(changes))
    else:
        output.print_line("no changes recorded", style="dim")
    if more:
        output.print_note(f"showing the newest {len(changes):,}; older entries exist (raise --limit, or drop it)")


def device_sections(detail: DeviceDetail) -> list[RenderableType]:
    d = detail.device
    sections: list[RenderableType] = [
        output.fields(
            [
                ("ip", d.ip),
                ("zone", d.zone),
                ("hostname", d.hostname or "-"),
                ("mac addresses", ", ".join(d.mac_addresses) or "-"),
                ("snmp engine id", d.snmp_engine_id or "-"),
                ("open ports", scan_spec.ports_text(d.open_ports) or "-"),
                ("first seen", output.moment(d.first_seen)),
                ("last seen", output.moment(d.last_seen)),
                ("last collector", d.last_collector or "-"),
                ("last job run", d.last_job_run_id or "-"),
                ("missed runs", str(d.missed_runs)),
                ("retired", output.moment(d.retired_at) if d.retired else "no"),
            ]
        )
    ]
    sections += _section("ports", "no ports known", _ports_table(d) if d.services else None)
    facts = output.table(["FACT", "VALUE"], ([k, v] for k, v in d.facts.items())) if d.facts else None
    sections += _section("facts", "no facts", facts)
    notes = output.table(["NOTE"], ([n] for n in d.notes)) if d.notes else None
    sections += _section("notes", "no notes", notes)
    history = _history_table(detail.history) if detail.history else None
    sections += _section("history", "no changes recorded", history)
    return sections


def _history_table(changes: list[DeviceChange]) -> RenderableType:
    return output.table(
        ["WHEN", "FIELD", "CHANGE", "JOB RUN"],
        (
            [output.iso(c.changed_at) or "-", c.field, change_text(c.old_value, c.new_value), c.job_run_id or "-"]
            for c in changes
        ),
    )


def change_text(old: str, new: str) -> str:
    """ "old -> new", with "-" for nothing: a port that opened reads "- -> open"."""
    return f"{old or '-'} -> {new or '-'}"


def _ports_table(d: Device) -> RenderableType:
    return output.table(
        ["PORT", "PROTO", "STATE", "SERVICE", "BANNER", "DETAILS", "LAST SEEN"],
        (
            [
                str(p.port),
                p.protocol or "-",
                p.state,
                p.service or "-",
                p.banner or "-",
                "; ".join(f"{k}={v}" for k, v in p.details.items()) or "-",
                output.ago(p.last_seen) if p.last_seen else "-",
            ]
            for p in d.services
        ),
    )


def _section(title: str, empty: str, body: RenderableType | None) -> list[RenderableType]:
    if body is None:
        return [Text(""), Text(empty, style="dim")]
    return [Text(""), Text(title, style="bold"), body]
