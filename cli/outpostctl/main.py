"""The `outpostctl` entry point: global options, the command tree, and the error boundary.

Global options come before the command (`outpostctl --server ops.example:443 --ca-file
ca.pem collectors list`) and each has an environment variable, so a shell profile can
point every command at one control plane.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from outpost.config import version_text
from outpost.process import exit_now
from outpostctl import (
    access_keys,
    audit,
    collectors,
    config,
    credentials,
    credentials_context,
    devices,
    discoveries,
    enrollment_tokens,
    jobs,
    output,
    schedules,
    server,
    tokens,
)
from outpostctl.endpoints import (
    DEFAULT_GATEWAY,
    DEFAULT_REGISTRY,
    DEFAULT_SCHEDULER,
    DEFAULT_TIMEOUT_SECONDS,
    Endpoints,
)
from outpostctl.errors import CommandError

app = typer.Typer(
    name="outpostctl",
    help="Administer an Outpost control plane: collectors, discovery, inventory and the servers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(collectors.app, name="collectors")
app.add_typer(credentials.app, name="credentials")
app.add_typer(discoveries.app, name="discoveries")
app.add_typer(schedules.app, name="schedules")
app.add_typer(jobs.app, name="jobs")
app.add_typer(devices.app, name="devices")
app.add_typer(config.app, name="config")
app.add_typer(server.app, name="server")
app.add_typer(tokens.app, name="tokens")
app.add_typer(access_keys.app, name="access-keys")
app.add_typer(enrollment_tokens.app, name="enrollment-tokens")
app.add_typer(audit.app, name="audit")


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"outpostctl {version_text()}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    *,
    server_address: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="OUTPOST_SERVER",
            help="One address for every service (an ingress routing gRPC by service path).",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(envvar="OUTPOST_REGISTRY_ADDRESS", help=f"Registry address host:port [{DEFAULT_REGISTRY}]."),
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(envvar="OUTPOST_GATEWAY_ADDRESS", help=f"Gateway admin address host:port [{DEFAULT_GATEWAY}]."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(envvar="OUTPOST_SCHEDULER_ADDRESS", help=f"Scheduler address host:port [{DEFAULT_SCHEDULER}]."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            envvar="OUTPOST_TOKEN_FILE",
            help="Read the admin token from this file (else OUTPOST_TOKEN, else the context).",
        ),
    ] = None,
    context_name: Annotated[
        str | None,
        typer.Option(
            "--context",
            envvar="OUTPOST_CONTEXT",
            help="Use this context of the config file instead of the current one.",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(envvar="OUTPOST_CA_FILE", help="Use TLS, trusting this CA bundle (PEM)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(envvar="OUTPOST_TIMEOUT", min=0.1, help="Deadline of each call, seconds.")
    ] = DEFAULT_TIMEOUT_SECONDS,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print outpostctl's version and the agent protocol version, and exit.",
        ),
    ] = False,
) -> None:
    context = credentials_context.load_context(context_name)
    token, auth_origin = credentials_context.resolve_token(token_file, context)
    ctx.obj = Endpoints.resolve(
        server=server_address,
        registry=registry,
        gateway=gateway,
        scheduler=scheduler,
        ca_file=ca_file,
        timeout=timeout,
        token=token,
        auth_origin=auth_origin,
        context=context,
    )


def main() -> None:
    """Run the command line; expected failures print one `error:` line and exit 1."""
    try:
        app(prog_name="outpostctl")
    except SystemExit as exc:  # how typer ends every command: leave without the teardown
        exit_now(exc.code)
    except CommandError as exc:
        output.print_error(str(exc))
        exit_now(1)
    except Exception as exc:  # the boundary: users get a line, never a traceback
        output.print_error(f"unexpected failure: {type(exc).__name__}: {exc}")
        exit_now(1)
    exit_now(0)
