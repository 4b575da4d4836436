"""`outpostctl jobs ...`: job runs, the record of every discovery run: list, show, cancel.

A run moves queued -> dispatched (a collector took it) -> running -> succeeded, failed,
timed_out or cancelled. States are printed and typed in lowercase, the same words in the
table, in `--state` and in JSON. The renderers here are also what `discoveries run`
prints when it has waited for a run.

Each claim is an *attempt* (1, 2, ...) and leases the run to its collector until
`lease_expires_at`; a lease nobody renews sends the run back to the queue for the next
attempt (ADR 0010). Both are shown so an operator can tell a retried run, and one whose
collector has gone quiet, at a glance.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from outpostctl import listing, output
from outpostctl.endpoints import endpoints_of
from outpostctl.options import JsonFlag, Reason
from outpostctl.scan_spec import ports_text
from outpostctl.scheduler_client import JobRun, JobRunDetail, SchedulerClient

app = typer.Typer(help="Job runs: list, show, cancel.", no_args_is_help=True)


class JobState(enum.StrEnum):
    """`--state` choices: `scheduler_client.JOB_STATES`, in order."""

    queued = "queued"
    dispatched = "dispatched"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"


RunId = Annotated[str, typer.Argument(metavar="ID", help="The job run's id.")]


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    *,
    discovery: Annotated[str, typer.Option("--discovery", metavar="NAME", help="Only runs of this discovery.")] = "",
    collector: Annotated[str, typer.Option("--collector", metavar="NAME", help="Only runs this collector took.")] = "",
    state: Annotated[JobState | None, typer.Option("--state", help="Only runs in this state.")] = None,
    since: Annotated[
        str,
        typer.Option(
            "--since", metavar="WHEN", help="Only runs created since: a duration back (1h, 7d) or a time (ISO-8601)."
        ),
    ] = "",
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """List job runs newest first, every page (--limit N for the newest N)."""
    created_since = listing.parse_since(since, "--since") if since.strip() else None
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        pages = listing.Listing(
            lambda size, token: scheduler.job_runs_page(
                discovery=discovery,
                collector=collector,
                state=state.value if state else None,
                created_since=created_since,
                page_size=size,
                page_token=token,
            ),
            limit=limit,
            page_token=page_token,
        )
        listing.print_rows(
            pages,
            noun="job runs",
            headers=RUN_HEADERS,
            row=run_row,
            as_json=as_json,
            empty="no job runs",
            truncate=["REASON"],
        )
    if created_since is not None and pages.more:
        output.print_note(f"(to continue, pass --since {output.iso(created_since)} with the token)")


@app.command("show")
def show_job(ctx: typer.Context, run_id: RunId, as_json: JsonFlag = False) -> None:
    """Show one job run: state, progress, times, and the discovery as it ran."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        detail = scheduler.get_job_run(run_id)
    if as_json:
        output.print_json({**output.plain(detail.run), "discovery_snapshot": output.plain(detail.discovery_snapshot)})
        return
    output.stdout.print(output.fields(detail_fields(detail)))


@app.command("cancel")
def cancel_job(ctx: typer.Context, run_id: RunId, reason: Reason = "") -> None:
    """Cancel a queued or running job run; its collector is told to stop."""
    with SchedulerClient(endpoints_of(ctx)) as scheduler:
        run = scheduler.cancel_job_run(run_id, reason=reason)
    label = output.safe(run.id or run_id)
    if run.state == "cancelled":
        output.print_line(f"job run {label} cancelled")
    else:
        output.print_line(f"job run {label} is {output.safe(run.state)}", "yellow")


def run_seconds(run: JobRun, now: datetime | None = None) -> float | None:
    """How long it ran: start to finish, or to `now` while running; None if it never started."""
    if run.started_at is None:
        return None
    end = run.finished_at or now or datetime.now(UTC)
    return max(0.0, (end - run.started_at).total_seconds())


def progress_text(run: JobRun) -> str:
    """ "12/254" targets done, "12/?" while the total is unknown, "-" before the start."""
    if run.targets_total == 0 and run.targets_done == 0:
        return "-"
    return f"{run.targets_done}/{run.targets_total or '?'}"


def reason_text(run: JobRun) -> str:
    """Why a queued run waits ("waiting: collector 'x' is disabled"), else the run's reason."""
    if run.state == "queued" and run.waiting_reason:
        return f"waiting: {run.waiting_reason}"
    return run.reason or ""


def trigger_text(run: JobRun) -> str:
    """ "manual", or "schedule NAME" for a scheduled run."""
    if run.schedule:
        return f"schedule {output.safe(run.schedule)}"
    return output.safe(run.trigger or "manual")


def where_text(run: JobRun) -> str:
    """The collector that took it, else where it should run: "collector X" or "zone Z"."""
    if run.collector:
        return output.safe(run.collector)
    if run.target_collector:
        return f"(collector {output.safe(run.target_collector)})"
    if run.target_zone:
        return f"(zone {output.safe(run.target_zone)})"
    return "-"


def attempt_of(run: JobRun) -> int:
    """Which attempt the run is on; 0 before its first claim (or from an older client record)."""
    return run.attempt


def lease_of(run: JobRun) -> datetime | None:
    """When the run goes back to the queue unless its collector renews; None when not leased."""
    return run.lease_expires_at


def attempt_text(run: JobRun) -> str:
    """ "2" for the second attempt, "-" before the first claim."""
    attempt = attempt_of(run)
    return str(attempt) if attempt else "-"


def lease_text(run: JobRun, now: datetime | None = None) -> str:
    """ "in 45s" while leased, "expired 5s ago" when the next tick takes it back, "-" unleased."""
    lease = lease_of(run)
    if lease is None:
        return "-"
    now = now or datetime.now(UTC)
    return output.until(lease, now) if lease > now else f"expired {output.ago(lease, now)}"


RUN_HEADERS = ["ID", "DISCOVERY", "STATE", "COLLECTOR", "ATTEMPT", "LEASE", "TARGETS", "DEVICES", "CREATED", "REASON"]


def run_row(r: JobRun) -> list[Text | str]:
    """One line per run; the trigger and times in full are in `jobs show`."""
    return [
        r.id,
        r.discovery,
        output.state_text(r.state),
        Text(where_text(r)),
        attempt_text(r),
        lease_text(r),
        progress_text(r),
        str(r.devices_found),
        output.ago(r.created_at),
        reason_text(r),
    ]


def runs_table(runs: Sequence[JobRun]) -> Table:
    """A table of runs (`discoveries show`'s latest runs)."""
    return output.table(RUN_HEADERS, (run_row(r) for r in runs), truncate=["REASON"])


def stale_text(count: int) -> str:
    """ "0", or the count and what it means (docs/inventory.md, "Time you can trust")."""
    if not count:
        return "0"
    return f"{count} (skipped: older than what another run recorded for the device)"


def summary_fields(run: JobRun) -> list[tuple[str, Text | str]]:
    """The few lines that say how a run ended (`discoveries run --wait`)."""
    return [
        ("job run", run.id),
        ("discovery", run.discovery),
        ("state", output.state_text(run.state)),
        ("collector", Text(where_text(run))),
        ("duration", output.duration(run_seconds(run))),
        ("targets", progress_text(run)),
        ("devices found", str(run.devices_found)),
        ("reason", run.reason or "-"),
    ]


def detail_fields(detail: JobRunDetail) -> list[tuple[str, Text | str]]:
    r = detail.run
    lease = lease_of(r)
    pairs: list[tuple[str, Text | str]] = [
        ("id", r.id),
        ("discovery", r.discovery),
        ("trigger", Text(trigger_text(r))),
        ("state", output.state_text(r.state)),
        ("reason", r.reason or "-"),
        *([("waiting", r.waiting_reason)] if r.state == "queued" and r.waiting_reason else []),
        ("cancelled by", r.cancelled_by or "-"),
        ("runs on", f"collector {r.target_collector}" if r.target_collector else f"zone {r.target_zone or '-'}"),
        ("collector", r.collector or "-"),
        ("gateway", r.gateway_id or "-"),
        ("attempt", attempt_text(r)),
        ("lease expires", output.moment(lease) if lease else "-"),
        ("targets done", progress_text(r)),
        ("devices found", str(r.devices_found)),
        ("batches sent", str(r.batches_sent)),
        ("stale observations", stale_text(r.observations_stale)),
        ("due", output.moment(r.due_at) if r.due_at else "-"),
        ("created", output.moment(r.created_at)),
        ("dispatched", output.moment(r.dispatched_at) if r.dispatched_at else "-"),
        ("started", output.moment(r.started_at) if r.started_at else "-"),
        ("finished", output.moment(r.finished_at) if r.finished_at else "-"),
        ("duration", output.duration(run_seconds(r))),
    ]
    snapshot = detail.discovery_snapshot
    if snapshot is not None:
        pairs += [
            ("scanned targets", ", ".join(snapshot.targets) or "-"),
            ("excluded", ", ".join(snapshot.exclusions) or "-"),
            ("ports", ports_text(snapshot.ports) or "-"),
            ("probes", ", ".join(snapshot.probes) or "defaults"),
        ]
        pairs += [
            (label, str(port))
            for label, port in (("snmp port", snapshot.snmp_port), ("ssh port", snapshot.ssh_port))
            if port
        ]
    return pairs
