"""`outpostctl devices ...`: the inventory the collectors built: list and show.

A device is keyed by its IP within a zone (the same private address can exist in two
zones). `show` adds every port the device ever had open or filtered with its state now
("open", "closed", "filtered") and details, every fact, and the device's history: which
field changed from what to what, when, and in which job run.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from outpostctl import output, scan_spec
from outpostctl.endpoints import endpoints_of
from outpostctl.gateway_client import Device, DeviceDetail, GatewayClient
from outpostctl.options import JsonFlag

app = typer.Typer(help="The device inventory: list, show.", no_args_is_help=True)

Zone = Annotated[str, typer.Option("--zone", metavar="ZONE", help="Only this zone.")]


@app.command("list")
def list_devices(ctx: typer.Context, zone: Zone = "", as_json: JsonFlag = False) -> None:
    """List devices: address, zone, host name, open ports, last seen."""
    with GatewayClient(endpoints_of(ctx)) as gateway:
        devices = gateway.list_devices(zone)
    if as_json:
        output.print_json(devices)
        return
    if not devices:
        output.print_line(f"no devices in zone '{output.safe(zone)}'" if zone else "no devices")
        return
    output.stdout.print(
        output.table(
            ["IP", "ZONE", "HOSTNAME", "OPEN PORTS", "MAC", "LAST SEEN"],
            (
                [
                    d.ip,
                    d.zone,
                    d.hostname or "-",
                    scan_spec.ports_text(d.open_ports) or "-",
                    ",".join(d.mac_addresses) or "-",
                    output.ago(d.last_seen),
                ]
                for d in sorted(devices, key=device_order)
            ),
            truncate=["OPEN PORTS"],
        )
    )


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
    if as_json:
        output.print_json({**output.plain(detail.device), "history": output.plain(detail.history)})
        return
    output.stdout.print(Group(*device_sections(detail)))


def device_order(device: Device) -> tuple[str, int, int, str]:
    """Zone, then address in numeric order (10.0.0.9 before 10.0.0.10), IPv4 first."""
    try:
        address = ipaddress.ip_address(device.ip)
    except ValueError:
        return (device.zone, 9, 0, device.ip)
    return (device.zone, address.version, int(address), device.ip)


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
            ]
        )
    ]
    sections += _section("ports", "no ports known", _ports_table(d) if d.services else None)
    facts = output.table(["FACT", "VALUE"], ([k, v] for k, v in d.facts.items())) if d.facts else None
    sections += _section("facts", "no facts", facts)
    notes = output.table(["NOTE"], ([n] for n in d.notes)) if d.notes else None
    sections += _section("notes", "no notes", notes)
    history = (
        output.table(
            ["WHEN", "FIELD", "CHANGE", "JOB RUN"],
            (
                [output.iso(c.changed_at) or "-", c.field, change_text(c.old_value, c.new_value), c.job_run_id or "-"]
                for c in detail.history
            ),
        )
        if detail.history
        else None
    )
    sections += _section("history", "no changes recorded", history)
    return sections


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
