"""`outpostctl server info|rotate-key`: what each control-plane service says about itself; the server key.

Each service gets its own section; one that cannot be reached says so ("unreachable:
<reason>") instead of failing the whole command, because the point of the command is to
find out which part is down. Only an unreachable registry, which every other service
depends on, makes it exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from outpostctl import output
from outpostctl.endpoints import Endpoints, endpoints_of
from outpostctl.errors import CommandError, ServiceUnreachableError
from outpostctl.gateway_client import GatewayClient, GatewayInfo
from outpostctl.options import JsonFlag
from outpostctl.registry_client import RegistryClient, ServerInfo
from outpostctl.scheduler_client import SchedulerClient
from outpostctl.tokens import parse_duration

app = typer.Typer(help="The control plane itself.", no_args_is_help=True)


@dataclass(frozen=True)
class Section:
    """One service's answer, or why there is none."""

    address: str
    info: Any = None
    error: str | None = None
    unreachable: bool = False


@app.command("info")
def server_info(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the registry, gateway and scheduler: versions, listeners, health."""
    endpoints = endpoints_of(ctx)
    sections = {
        "registry": _ask(endpoints.registry, lambda: _registry_info(endpoints)),
        "gateway": _ask(endpoints.gateway, lambda: _gateway_info(endpoints)),
        "scheduler": _ask(endpoints.scheduler, lambda: _scheduler_health(endpoints)),
    }
    if as_json:
        output.print_json(
            {
                name: {"address": s.address, **({"error": s.error} if s.error else {}), **_json(s.info)}
                for name, s in sections.items()
            }
        )
    else:
        output.stdout.print(Group(*(_render(name, s) for name, s in sections.items())))
    if sections["registry"].error is not None:
        raise typer.Exit(1)


@app.command("rotate-key")
def rotate_server_key(
    ctx: typer.Context,
    *,
    activate_in: Annotated[
        str,
        typer.Option(
            "--activate-in",
            metavar="DURATION",
            help="When gateways start proving the new key, e.g. 24h; 0: now. Leave gateways time to read it "
            "(--server-key-refresh) and live collectors time to hear of it.",
        ),
    ] = "24h",
    retire_after: Annotated[
        str,
        typer.Option(
            "--retire-after",
            metavar="DURATION",
            help="How long after the activation the old key is still accepted, e.g. 7d (collectors that were "
            "offline during the announcement reconnect with it and learn the new one).",
        ),
    ] = "7d",
    as_json: JsonFlag = False,
) -> None:
    """Announce a new server key: live collectors pin it now, and switch to it at its activation."""
    activate_in_seconds = parse_duration(activate_in, "--activate-in", allow_zero=True)
    retire_after_seconds = parse_duration(retire_after, "--retire-after")
    with RegistryClient(endpoints_of(ctx)) as registry:
        rotation = registry.rotate_server_key(
            activate_in_seconds=activate_in_seconds, retire_after_seconds=retire_after_seconds
        )
    if as_json:
        output.print_json(rotation)
        return
    activates = output.iso(rotation.activates_at) if rotation.activates_at else "now"
    retires = output.iso(rotation.current_retires_at) if rotation.current_retires_at else "-"
    output.print_line(f"announced server key {rotation.next_fingerprint}, current from {activates}")
    output.print_note(
        f"the current key {rotation.current_fingerprint} stays accepted until {retires}. Access keys created "
        "from now on pin the current key until the activation; for new installations after "
        f"{retires}, give collectors access keys created after the activation"
    )


def _ask(address: str, fetch: Callable[[], object]) -> Section:
    try:
        return Section(address, info=fetch())
    except ServiceUnreachableError as exc:
        return Section(address, error=f"unreachable: {exc.reason}", unreachable=True)
    except CommandError as exc:
        return Section(address, error=str(exc))


def _registry_info(endpoints: Endpoints) -> ServerInfo:
    with RegistryClient(endpoints) as registry:
        return registry.get_server_info()


def _gateway_info(endpoints: Endpoints) -> GatewayInfo:
    with GatewayClient(endpoints) as gateway:
        return gateway.get_gateway_info()


def _scheduler_health(endpoints: Endpoints) -> dict[str, str]:
    with SchedulerClient(endpoints) as scheduler:
        return {"health": scheduler.health()}


def _json(info: Any) -> dict[str, Any]:
    if info is None:
        return {}
    plain = output.plain(info)
    return plain if isinstance(plain, dict) else {"info": plain}


def _render(name: str, section: Section) -> Group:
    title = Text.assemble((name, "bold"), "  ", output.safe(section.address))
    if section.error is not None:
        error = Text(output.safe(section.error), style="red")
        return Group(title, Padding(error, (0, 0, 0, 2), expand=False), Text(""))
    info = section.info
    pairs: list[tuple[str, Text | str]]
    if isinstance(info, ServerInfo):
        pairs = [
            ("server instance", info.server_instance),
            ("version", info.version),
            ("started", _when(info)),
            ("database", info.database),
            ("heartbeat interval", f"{info.heartbeat_interval_seconds} s"),
            ("server key", info.server_key_fingerprint or "-"),
        ]
        if info.next_server_key_fingerprint:
            activates = output.iso(info.next_server_key_activates_at) if info.next_server_key_activates_at else "-"
            pairs.append(("next server key", f"{info.next_server_key_fingerprint} (current from {activates})"))
    elif isinstance(info, GatewayInfo):
        listeners = ", ".join(f"{x.transport} {x.address}{' (TLS)' if x.tls else ''}" for x in info.listeners)
        pairs = [
            ("gateway id", info.gateway_id),
            ("version", info.version),
            ("started", _when(info)),
            ("listeners", listeners or "-"),
            ("sessions", str(info.sessions)),
        ]
    else:
        status = str(info["health"])
        pairs = [("health", Text(status, style="green" if status == "SERVING" else "yellow"))]
    return Group(title, Padding(output.fields(pairs), (0, 0, 0, 2), expand=False), Text(""))


def _when(info: ServerInfo | GatewayInfo) -> str:
    if info.started_at is None:
        return "-"
    return f"{output.iso(info.started_at)} ({output.ago(info.started_at)})"
