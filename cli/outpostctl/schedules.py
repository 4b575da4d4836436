"""`outpostctl schedules ...`: when discoveries run: create, list, enable, disable, remove.

A schedule is five cron fields (minute, hour, day of month, month, day of week, as in
crontab(5)) read in an IANA time zone, so "0 2 * * *" in Europe/Berlin stays at 02:00
local time across daylight-saving changes. Each field is checked here with croniter (the
library the scheduler uses), so a mistake names its flag. `--missed` says what happens to
runs that fell due while their collector was away: `skip` cancels them, `run-once` runs
the newest once when it returns; omitted, the scheduler applies its default.
"""

from __future__ import annotations

import enum
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated

import typer

from outpostctl import listing, output
from outpostctl.endpoints import endpoints_of
from outpostctl.options import JsonFlag, Yes, confirm_removal
from outpostctl.scheduler_client import Schedule, SchedulerClient

app = typer.Typer(help="Schedules: create, list, enable, disable, remove.", no_args_is_help=True)

ScheduleName = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]
DEFAULT_TIMEZONE = "UTC"

# (flag, what crontab(5) calls it), in cron order.
CRON_FIELDS = (
    ("--minute", "minute"),
    ("--hour", "hour"),
    ("--day-of-month", "day of month"),
    ("--month", "month"),
    ("--day-of-week", "day of week"),
)


class Missed(enum.StrEnum):
    skip = "skip"
    run_once = "run-once"


def _cron_option(flag: str, example: str) -> typer.models.OptionInfo:
    return typer.Option(flag, metavar="EXPR", help=f"Cron field, e.g. {example}.")


@app.command("create")
def create_schedule(
    ctx: typer.Context,
    name: ScheduleName,
    *,
    discovery: Annotated[str, typer.Option("--discovery", metavar="NAME", help="The discovery to run.")],
    minute: Annotated[str, _cron_option("--minute", "0, */15, 5,35")],
    hour: Annotated[str, _cron_option("--hour", "2, 8-18, *")],
    day_of_month: Annotated[str, _cron_option("--day-of-month", "*, 1, 1-7")],
    month: Annotated[str, _cron_option("--month", "*, 1-6, jan")],
    day_of_week: Annotated[str, _cron_option("--day-of-week", "*, 1-5, mon-fri (0 and 7 are Sunday)")],
    timezone: Annotated[
        str, typer.Option("--timezone", metavar="TZ", help="IANA time zone the fields are read in.")
    ] = DEFAULT_TIMEZONE,
    missed: Annotated[
        Missed | None,
        typer.Option(
            "--missed",
            help="Runs missed while the collector was away: skip, or run the newest once; default: the server's.",
        ),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
) -> None:
    """Create a schedule for a discovery."""
    fields = []
    for position, value in enumerate((minute, hour, day_of_month, month, day_of_week)):
        try:
            fields.append(check_cron_field(position, value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=CRON_FIELDS[position][0]) from None
    try:
        zone = check_timezone(timezone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--timezone") from None
    schedule = Schedule(
        name=name,
        discovery=discovery,
        minute=fields[0],
        hour=fields[1],
        day_of_month=fields[2],
        month=fields[3],
        day_of_week=fields[4],
        timezone=zone,
        enabled=not disabled,
        missed_run_policy=missed.value if missed else "",
    )
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        created = scheduler.create_schedule(schedule)
    label = output.safe(created.name or name)
    head = f"schedule '{label}' created: discovery '{output.safe(created.discovery)}' at {cron_text(created)}"
    if created.enabled:
        output.print_line(f"{head}, next {next_due_text(created)}")
    else:
        output.print_line(f"{head}, disabled (enable it with `outpostctl schedules enable {label}`)")


@app.command("list")
def list_schedules(
    ctx: typer.Context,
    discovery: Annotated[
        str, typer.Option("--discovery", metavar="NAME", help="Only schedules of this discovery.")
    ] = "",
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """List schedules by name, every page, with their cron fields and when each is next due."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        listing.print_rows(
            listing.Listing(
                lambda size, token: scheduler.schedules_page(discovery.strip(), size, token),
                limit=limit,
                page_token=page_token,
            ),
            noun="schedules",
            headers=["NAME", "DISCOVERY", "CRON", "TIME ZONE", "STATE", "MISSED", "NEXT DUE", "LAST DUE"],
            row=lambda s: [
                s.name,
                s.discovery,
                cron_fields_text(s),
                s.timezone or DEFAULT_TIMEZONE,
                output.state_text(schedule_state(s)),
                s.missed_run_policy or "-",
                next_due_text(s) if s.enabled else "-",
                output.ago(s.last_due_at) if s.last_due_at else "-",
            ],
            as_json=as_json,
            empty="no schedules",
        )


@app.command("enable")
def enable_schedule(ctx: typer.Context, name: ScheduleName) -> None:
    """Enable a schedule: its discovery runs at the next due time."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        schedule = scheduler.set_schedule_enabled(name, True)
    output.print_line(f"schedule '{output.safe(schedule.name or name)}' enabled, next {next_due_text(schedule)}")


@app.command("disable")
def disable_schedule(ctx: typer.Context, name: ScheduleName) -> None:
    """Disable a schedule: no new runs until it is enabled again; runs already queued stay."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        schedule = scheduler.set_schedule_enabled(name, False)
    output.print_line(f"schedule '{output.safe(schedule.name or name)}' disabled")


@app.command("remove")
def remove_schedule(ctx: typer.Context, name: ScheduleName, yes: Yes = False) -> None:
    """Remove a schedule; its discovery and past runs stay."""
    confirm_removal(f"Remove schedule '{output.safe(name)}'?", yes=yes)
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        scheduler.delete_schedule(name)
    output.print_line(f"schedule '{output.safe(name)}' removed")


def check_cron_field(position: int, value: str) -> str:
    """One cron field (0 = minute ... 4 = day of week), stripped; ValueError if invalid."""
    flag, what = CRON_FIELDS[position]
    text = value.strip()
    if not text or any(ch.isspace() for ch in text):
        raise ValueError(f"{flag} takes one cron field without spaces, like '*' or '*/15' or '1-5'")
    expression = ["*"] * len(CRON_FIELDS)
    expression[position] = text
    # Imported here, not at the top: croniter (and dateutil with it) is a tenth of the start-up
    # CPU of every outpostctl command, and only `schedules create/update` check cron fields.
    from croniter import croniter  # type: ignore[import-untyped, unused-ignore]

    if not croniter.is_valid(" ".join(expression)):
        raise ValueError(f"'{text}' is not a valid cron {what} field")
    return text


def check_timezone(name: str) -> str:
    """An IANA time zone name ("Europe/Berlin"), as given; ValueError if unknown here."""
    text = name.strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}': use an IANA name like UTC or Europe/Berlin") from None
    return text


def cron_fields_text(schedule: Schedule) -> str:
    """The five fields as crontab(5) writes them: "0 2 * * 1-5"."""
    s = schedule
    return " ".join((s.minute, s.hour, s.day_of_month, s.month, s.day_of_week))


def cron_text(schedule: Schedule) -> str:
    """The fields and their time zone, for sentences: "`0 2 * * 1-5` (Europe/Berlin)"."""
    return f"`{output.safe(cron_fields_text(schedule))}` ({output.safe(schedule.timezone or DEFAULT_TIMEZONE)})"


def schedule_state(schedule: Schedule) -> str:
    return "enabled" if schedule.enabled else "disabled"


def next_due_text(schedule: Schedule, now: datetime | None = None) -> str:
    """When it is next due, in its own time zone: "2026-11-25 02:00 CET (in 5h)"."""
    when = schedule.next_due_at
    if when is None:
        return "not due"
    try:
        local = when.astimezone(zoneinfo.ZoneInfo(schedule.timezone or DEFAULT_TIMEZONE))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        local = when.astimezone(UTC)
    return f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({output.until(when, now)})"
