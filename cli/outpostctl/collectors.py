"""`outpostctl collectors ...`: list, inspect, explain, register, set-password, enable, disable, remove.

A collector announces itself and waits as pending; an admin registers it with the service
username and password set when it was installed. Every change may carry a reason; the
registry records it with the principal of the token the call carried, and shows both in
`collectors show`. `collectors explain` asks the registry why a
collector is or is not live and exits 0 only when it is, so scripts can gate on it.
"""

from __future__ import annotations

import enum
import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from outpostctl import listing, output, secret_input
from outpostctl.endpoints import endpoints_of
from outpostctl.errors import CommandError
from outpostctl.options import JsonFlag, Reason, Yes, confirm_removal
from outpostctl.registry_client import Collector, Explanation, NameConflict, RegistryClient, SpoolStatus
from outpostctl.secret_input import SecretSource
from outpostctl.tokens import parse_duration

app = typer.Typer(help="Collectors: list, register, enable, disable, remove.", no_args_is_help=True)


class State(enum.StrEnum):
    pending = "pending"
    enabled = "enabled"
    disabled = "disabled"


CollectorName = Annotated[str, typer.Argument(metavar="NAME", help="The collector's name.")]

DEFAULT_ROTATION_OVERLAP = "24h"

EXIT_NOT_LIVE = 3
"""`collectors explain` answered, and the collector is not live. Distinct from 1 (the
question could not be asked: registry unreachable) and 2 (usage), so a script can tell
"it is down" from "I could not find out"."""


@app.command("list")
def list_collectors(
    ctx: typer.Context,
    *,
    state: Annotated[State | None, typer.Option(help="Only collectors in this state.")] = None,
    zone: Annotated[str, typer.Option("--zone", metavar="ZONE", help="Only collectors of this zone.")] = "",
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """List collectors by name, every page, with their state, online status and key fingerprint."""
    wanted = state.value if state else None
    with RegistryClient(endpoints_of(ctx)) as registry:
        pages = listing.Listing(
            lambda size, token: registry.list_collectors_page(wanted, zone.strip(), page_size=size, page_token=token),
            limit=limit,
            page_token=page_token,
        )
        empty = " ".join(filter(None, ["no", wanted, "collectors", f"in zone '{output.safe(zone)}'" if zone else ""]))
        listing.print_rows(
            pages,
            noun="collectors",
            headers=COLLECTOR_HEADERS,
            row=_collector_row,
            as_json=as_json,
            empty=empty,
            truncate=["FINGERPRINT"],
        )
        if as_json:
            return
        conflicts = _conflicts_if_any(registry)
    if conflicts:
        claims = "refused name claim" if len(conflicts) == 1 else "refused name claims"
        output.print_line(f"{len(conflicts)} {claims}: see `outpostctl collectors conflicts`", "yellow")


@app.command("show")
def show_collector(ctx: typer.Context, name: CollectorName, as_json: JsonFlag = False) -> None:
    """Show everything the registry knows about one collector."""
    with RegistryClient(endpoints_of(ctx)) as registry:
        collector = registry.get_collector(name)
    if as_json:
        output.print_json(collector)
        return
    c = collector
    output.stdout.print(
        output.fields(
            [
                ("name", c.name),
                ("zone", c.zone),
                ("state", output.state_text(c.state)),
                ("state reason", c.state_reason or "-"),
                ("state changed by", c.state_changed_by or "-"),
                ("enrolled by", c.enrolled_by or "-"),
                ("status", output.online_text(c.online)),
                ("connected (gateway)", output.yes_no(c.connected)),
                ("transport", c.transport or "-"),
                ("checks in", f"every {c.check_in_seconds} s (polling)" if c.check_in_seconds else "-"),
                ("gateway", c.gateway_id or "-"),
                ("remote address", c.remote_address or "-"),
                ("fingerprint", c.fingerprint),
                ("key rotated at", output.moment(c.key_rotated_at) if c.key_rotated_at else "-"),
                ("service password", _password_text(c)),
                ("password rotated at", output.moment(c.password_rotated_at) if c.password_rotated_at else "-"),
                (
                    "old password accepted until",
                    output.moment(c.previous_password_accepted_until) if c.previous_password_accepted_until else "-",
                ),
                ("last handshake proved", c.password_last_proved or "-"),
                ("instance uid", c.instance_uid),
                ("version", c.version or "-"),
                ("username", c.username or "-"),
                ("first seen", output.moment(c.first_seen)),
                ("last seen", output.moment(c.last_seen)),
                ("registered", output.moment(c.registered_at)),
                ("last error", c.last_error or "-"),
                ("last error at", output.moment(c.last_error_at) if c.last_error else "-"),
                ("clock skew", _skew_text(c.clock_skew_ms)),
                ("spool", _spool_text(c.spool)),
                ("spool drops", _drops_text(c.spool)),
            ]
        )
    )


@app.command("explain")
def explain_collector(ctx: typer.Context, name: CollectorName, as_json: JsonFlag = False) -> None:
    """Say why a collector is or is not live, with evidence and advice.

    Exit status: 0 live (online and enabled), 3 not live, 1 the registry could not be asked.
    """
    with RegistryClient(endpoints_of(ctx)) as registry:
        explanation = registry.explain_collector(name)
    if as_json:
        output.print_json(explanation)
    else:
        print_explanation(explanation)
    if not explanation.live:
        raise typer.Exit(EXIT_NOT_LIVE)


def print_explanation(explanation: Explanation) -> None:
    """The summary, then each finding: severity, code, message, when, and what to do."""
    output.print_line(output.safe(explanation.summary), "bold green" if explanation.live else "bold red")
    for finding in explanation.findings:
        line = output.severity_text(finding.severity)
        line.append(f" [{output.safe(finding.code)}] {output.safe(finding.message)}")
        output.stdout.print(line, soft_wrap=True)
        if finding.at is not None:
            output.print_line(f"      at {output.moment(finding.at)}", "dim")
        if finding.advice:
            output.print_line(f"      advice: {output.safe(finding.advice)}")


@app.command("conflicts")
def list_conflicts(
    ctx: typer.Context, limit: listing.Limit = None, page_token: listing.PageToken = "", as_json: JsonFlag = False
) -> None:
    """List refused name claims, every page: another key pair announcing a name already held."""
    with RegistryClient(endpoints_of(ctx)) as registry:
        listing.print_rows(
            listing.Listing(registry.name_conflicts_page, limit=limit, page_token=page_token),
            noun="conflicts",
            headers=["NAME", "FINGERPRINT", "HELD BY", "ADDRESS", "ATTEMPTS", "FIRST SEEN", "LAST SEEN"],
            row=_conflict_row,
            as_json=as_json,
            empty="no refused name claims",
            truncate=["FINGERPRINT", "HELD BY"],
        )


@app.command("register")
def register_collector(
    ctx: typer.Context,
    name: CollectorName,
    *,
    username: Annotated[str, typer.Option("--username", help="The service username set at install.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the service password from stdin.")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the service password from this file."),
    ] = None,
    enable: Annotated[bool, typer.Option("--enable", help="Enable it at once.")] = False,
    fingerprint: Annotated[
        str,
        typer.Option(
            "--fingerprint",
            metavar="SHA256:...",
            help="Register only if the collector's key has this fingerprint (from its log or status file).",
        ),
    ] = "",
) -> None:
    """Register a pending collector with the service credentials it was installed with.

    The registry refuses when --fingerprint does not match the collector's key. On a
    terminal without --fingerprint, the key's fingerprint is shown and must be confirmed
    (as ssh asks about a new host key); the registration is then bound to that key.
    """
    source = SecretSource("service password", "--password-file", "--password-stdin", password_stdin, password_file)
    secret_input.check_sources([source])
    secret_input.require(source)
    with RegistryClient(endpoints_of(ctx)) as registry:
        if not fingerprint and _interactive():
            fingerprint = _confirm_key(registry.get_collector(name))
        password = secret_input.read_secret(source)
        collector = registry.register_collector(
            name, username=username, password=password, enable=enable, fingerprint=fingerprint
        )
    label = output.safe(collector.name or name)
    if collector.state == "enabled":
        output.print_line(f"collector '{label}' registered and enabled")
    else:
        output.print_line(
            f"collector '{label}' registered; it is {output.safe(collector.state)} "
            f"(enable it with `outpostctl collectors enable {label}`)"
        )


@app.command("set-password")
def set_collector_password(
    ctx: typer.Context,
    name: CollectorName,
    *,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="Read the new service password from this file (else: prompted twice)."),
    ] = None,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            metavar="DURATION",
            help="How long the old password is still accepted at handshakes, e.g. 24h, 7d.",
        ),
    ] = DEFAULT_ROTATION_OVERLAP,
) -> None:
    """Give a registered collector a new service password; the old one works until the overlap ends.

    Live sessions go on (a password is checked only at handshakes). Put the new password
    in the collector's --password-file before the overlap ends: it reads the file again
    at every reconnection, no restart needed (ADR 0025).
    """
    overlap_seconds = parse_duration(overlap, "--overlap")
    if password_file is not None:
        source = SecretSource("new service password", "--password-file", None, False, password_file)
        password = secret_input.read_secret(source)
    elif _interactive():
        password = _prompt_new_password()
    else:
        raise typer.BadParameter(
            "give the new service password with --password-file (no terminal to prompt on)",
            param_hint="--password-file",
        )
    with RegistryClient(endpoints_of(ctx)) as registry:
        collector = registry.set_collector_password(name, password=password, overlap_seconds=overlap_seconds)
    label = output.safe(collector.name or name)
    until = collector.previous_password_accepted_until
    if until is not None:
        output.print_line(
            f"collector '{label}': new service password set; the old one is accepted until {output.moment(until)}"
        )
    else:
        output.print_line(f"collector '{label}': new service password set (it had none on record)")
    output.print_line("put the new password in the collector's --password-file; it is read at its next reconnection")


def _prompt_new_password() -> str:
    first = getpass.getpass("new service password: ")
    if not first.strip():
        raise typer.BadParameter("the new service password is empty")
    if getpass.getpass("again: ") != first:
        raise CommandError("the two passwords differ; nothing changed")
    return first


def _password_text(c: Collector) -> str:
    if c.password_on_record:
        return "on record (proven at every handshake)"
    if c.state == "pending":
        return "checked at registration"
    return "none on record (key only; set one with `outpostctl collectors set-password`)"


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm_key(collector: Collector) -> str:
    """Show the key an admin is about to register and ask; its fingerprint, or exit 1 on "no"."""
    where = output.safe(collector.remote_address or "an unknown address")
    output.print_line(
        f"collector '{output.safe(collector.name)}' in zone '{output.safe(collector.zone)}' "
        f"(last connected from {where}) has key fingerprint"
    )
    output.print_line(f"    {output.safe(collector.fingerprint)}", "bold")
    output.print_line("compare it with the collector's log (collector_started) or status file")
    if not typer.confirm("register this key?", default=False):
        output.print_error("not registered")
        raise typer.Exit(1)
    return collector.fingerprint


@app.command("enable")
def enable_collector(ctx: typer.Context, name: CollectorName, reason: Reason = "") -> None:
    """Enable a registered collector: it receives jobs and its results are accepted."""
    with RegistryClient(endpoints_of(ctx)) as registry:
        registry.enable_collector(name, reason=reason)
    output.print_line(f"collector '{output.safe(name)}' enabled")


@app.command("disable")
def disable_collector(ctx: typer.Context, name: CollectorName, reason: Reason = "") -> None:
    """Disable a collector: its live session stops receiving jobs at once."""
    with RegistryClient(endpoints_of(ctx)) as registry:
        registry.disable_collector(name, reason=reason)
    output.print_line(f"collector '{output.safe(name)}' disabled")


@app.command("remove")
def remove_collector(
    ctx: typer.Context,
    name: CollectorName,
    reason: Reason = "",
    yes: Yes = False,
) -> None:
    """Remove a collector; if it announces itself again it is pending anew."""
    question = f"Remove collector '{output.safe(name)}'? It will have to be registered again"
    confirm_removal(question, yes=yes)
    with RegistryClient(endpoints_of(ctx)) as registry:
        registry.remove_collector(name, reason=reason)
    output.print_line(f"collector '{output.safe(name)}' removed")


def _conflicts_if_any(registry: RegistryClient) -> list[NameConflict]:
    """Conflicts for the warning under the table; the table itself must not fail for them."""
    try:
        return registry.list_name_conflicts()
    except CommandError:
        return []


COLLECTOR_HEADERS = ["NAME", "ZONE", "STATE", "STATUS", "FINGERPRINT", "VERSION", "ADDRESS", "LAST SEEN"]


def _collector_row(c: Collector) -> list[Text | str]:
    return [
        c.name,
        c.zone,
        output.state_text(c.state),
        output.online_text(c.online),
        c.fingerprint,
        c.version,
        output.host(c.remote_address),
        output.ago(c.last_seen),
    ]


def _skew_text(skew_ms: int) -> str:
    """Collector clock minus gateway clock; 0 is also what a registry that measured nothing sends."""
    return f"{skew_ms / 1000:+.1f} s (collector minus gateway)"


def _spool_text(spool: SpoolStatus | None) -> str:
    if spool is None:
        return "not reported"
    bound = f" of {output.size(spool.max_bytes)}" if spool.max_bytes else ""
    backlog = f"{spool.batches} batches, {output.size(spool.bytes)}{bound}"
    if spool.oldest is not None:
        backlog += f", oldest {output.ago(spool.oldest)}"
    return backlog


def _drops_text(spool: SpoolStatus | None) -> Text | str:
    if spool is None:
        return "-"
    dropped = spool.dropped_full + spool.dropped_expired + spool.dropped_corrupt
    text = (
        f"{dropped} batches ({spool.dropped_full} full, {spool.dropped_expired} expired, "
        f"{spool.dropped_corrupt} corrupt), {spool.dropped_devices} devices"
    )
    return Text(text, style="red") if dropped else text


def _conflict_row(c: NameConflict) -> list[Text | str]:
    return [
        c.name,
        c.fingerprint,
        c.held_by_fingerprint,
        c.remote_address,
        str(c.attempts),
        output.ago(c.first_seen),
        output.ago(c.last_seen),
    ]
