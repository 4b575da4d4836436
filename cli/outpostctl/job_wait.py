"""Waiting for a job run to end: poll the scheduler, draw progress on a terminal.

`wait_for_run` asks for the run every `POLL_SECONDS` (each ask is one deadline-bound
call) until it reaches a terminal state. When stderr is a terminal it draws a progress
bar there (targets done / total, devices found, elapsed), so stdout keeps only the result
and `--json` stays clean; without a terminal (CI, pipes, cron) it draws nothing.

A scheduler that stops answering (a restart, a network blip) is asked again for up to
`UNREACHABLE_GRACE_SECONDS` before the wait gives up. Ctrl-C stops the waiting only: the
run itself carries on, and the message says how to follow or cancel it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from outpostctl import output
from outpostctl.errors import ServiceUnreachableError
from outpostctl.scheduler_client import TERMINAL_STATES, JobRun, SchedulerClient

POLL_SECONDS = 0.5
UNREACHABLE_GRACE_SECONDS = 30.0
EXIT_INTERRUPTED = 130  # what a shell reports for a command ended by SIGINT

# Shows the run's latest record, with a note ("scheduler unreachable, retrying").
_Update = Callable[[JobRun, str], None]


def wait_for_run(scheduler: SchedulerClient, run: JobRun) -> JobRun:
    """Poll until `run` is terminal and return its final record; Ctrl-C exits with 130."""
    try:
        with _progress(run) as update:
            unreachable_since: float | None = None
            while run.state not in TERMINAL_STATES:
                time.sleep(POLL_SECONDS)
                try:
                    run = scheduler.get_job_run(run.id).run
                except ServiceUnreachableError:
                    now = time.monotonic()
                    unreachable_since = unreachable_since or now
                    if now - unreachable_since > UNREACHABLE_GRACE_SECONDS:
                        raise
                    update(run, "scheduler unreachable, retrying")
                    continue
                unreachable_since = None
                update(run, "")
    except KeyboardInterrupt:
        run_id = output.safe(run.id)
        sys.stderr.write(
            f"stopped waiting; job run {run_id} continues ({output.safe(run.state)}). "
            f"Follow it with `outpostctl jobs show {run_id}`, "
            f"cancel it with `outpostctl jobs cancel {run_id}`\n"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return run


def progress_label(run: JobRun) -> str:
    """What the run is doing, for the bar: "queued", "running on edge-1", ..."""
    state = output.safe(run.state)
    if run.collector and run.state in ("dispatched", "running"):
        preposition = "to" if run.state == "dispatched" else "on"
        return f"{state} {preposition} {output.safe(run.collector)}"
    if run.state == "queued":
        why = f": {output.safe(run.waiting_reason)}" if run.waiting_reason else ""
        if run.target_collector:
            return f"queued for collector {output.safe(run.target_collector)}{why}"
        if run.target_zone:
            return f"queued for zone {output.safe(run.target_zone)}{why}"
    return state


@contextmanager
def _progress(run: JobRun) -> Iterator[_Update]:
    """A function that shows the run's latest state: a bar on a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield lambda _run, _note: None
        return
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("targets  {task.fields[devices]} devices found", markup=False),
        TimeElapsedColumn(),
        console=Console(stderr=True, highlight=False),
    )
    task = bar.add_task(progress_label(run), total=None, devices=run.devices_found)

    def update(run: JobRun, note: str) -> None:
        _show(bar, task, run, note)

    with bar:
        update(run, "")
        yield update


def _show(bar: Progress, task: TaskID, run: JobRun, note: str) -> None:
    label = progress_label(run) + (f" ({note})" if note else "")
    bar.update(
        task, description=label, total=run.targets_total or None, completed=run.targets_done, devices=run.devices_found
    )
