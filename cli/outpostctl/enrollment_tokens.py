"""`outpostctl enrollment-tokens ...`: zero-touch rollout, one zone at a time (ADR 0022).

A collector started with `--enrollment-token-file` holding a token is registered and
enabled in the token's zone without an admin step, within the token's bounds: uses,
expiry and source networks. `create` prints the token once (`--json`: `{"name","zone",
"uses","expires_at","cidrs","enrollment_token"}`); the registry keeps only its digest.
The collector still needs an access key (the token is a second secret: "may join zone Z
without an admin", the access key "may talk to us"). `revoke` stops new enrollments;
collectors already enrolled stay (disable or remove them one by one).
"""

from __future__ import annotations

from typing import Annotated

import typer

from outpostctl import listing, output
from outpostctl.access_client import EnrollmentTokenClient, EnrollmentTokenInfo
from outpostctl.endpoints import endpoints_of
from outpostctl.errors import CommandError
from outpostctl.options import JsonFlag
from outpostctl.tokens import parse_duration

app = typer.Typer(
    help="Zone enrollment tokens: collectors holding one join its zone, enabled, without an admin step.",
    no_args_is_help=True,
)

TokenName = Annotated[str, typer.Argument(metavar="NAME", help="The token's name, e.g. the rollout it is for.")]


@app.command("create")
def create_enrollment_token(
    ctx: typer.Context,
    name: TokenName,
    *,
    zone: Annotated[str, typer.Option("--zone", metavar="ZONE", help="The zone enrolled collectors join (required).")],
    uses: Annotated[
        int, typer.Option("--uses", metavar="N", help="Collectors it may enroll (default: unlimited).")
    ] = 0,
    expires: Annotated[
        str | None, typer.Option("--expires", metavar="DURATION", help="e.g. 7d, 12h (default: never).")
    ] = None,
    cidrs: Annotated[
        list[str] | None,
        typer.Option(
            "--cidr",
            metavar="CIDR",
            help="Enroll only collectors connecting from this network, as the gateway sees them; repeatable "
            "(default: any).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an enrollment token and print it, once."""
    if uses < 0:
        raise CommandError("--uses must be 0 (unlimited) or more")
    seconds = parse_duration(expires) if expires else 0
    with EnrollmentTokenClient(endpoints_of(ctx)) as client:
        created = client.create(name, zone=zone, uses=uses, expires_in_seconds=seconds, cidrs=list(cidrs or ()))
    info = created.info
    if as_json:
        output.print_json(
            {
                "name": info.name,
                "zone": info.zone,
                "uses": info.uses_allowed or None,
                "expires_at": info.expires_at,
                "cidrs": info.cidrs,
                "enrollment_token": created.enrollment_token,
            }
        )
        return
    output.print_line(created.enrollment_token)
    output.print_note(
        f"enrollment token '{info.name}' ({info.token_id}): enrolls into zone {info.zone}, {_bounds(info)}. "
        "The line above is shown only now: give it to collectors as --enrollment-token-file (mode 0600) or "
        "OUTPOST_ENROLLMENT_TOKEN, with their access key"
    )


@app.command("list")
def list_enrollment_tokens(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """Enrollment tokens by name, every page: uses, expiry, networks and state; never their secrets."""
    with EnrollmentTokenClient(endpoints_of(ctx)) as client:
        listing.print_rows(
            listing.Listing(
                lambda size, token: client.list_page(include_revoked=include_revoked, page_size=size, page_token=token),
                limit=limit,
                page_token=page_token,
            ),
            noun="enrollment tokens",
            headers=["NAME", "ZONE", "USES", "EXPIRES", "NETWORKS", "CREATED BY", "STATE"],
            row=lambda t: [
                t.name,
                t.zone,
                f"{t.uses_used}/{t.uses_allowed}" if t.uses_allowed else f"{t.uses_used}/unlimited",
                output.until(t.expires_at) if t.expires_at else "never",
                ", ".join(t.cidrs) or "any",
                t.created_by,
                f"revoked {output.ago(t.revoked_at)} by {t.revoked_by}" if t.revoked_at else t.state,
            ],
            as_json=as_json,
            empty="no enrollment tokens",
        )


@app.command("revoke")
def revoke_enrollment_token(ctx: typer.Context, name: TokenName) -> None:
    """Revoke an enrollment token: it enrolls no more collectors (those it enrolled stay)."""
    with EnrollmentTokenClient(endpoints_of(ctx)) as client:
        token = client.revoke(name)
    output.print_line(
        f"revoked enrollment token '{token.name}' ({token.token_id}); it had enrolled {token.uses_used} "
        f"collector{'s' if token.uses_used != 1 else ''}, who stay registered"
    )


def _bounds(info: EnrollmentTokenInfo) -> str:
    uses = f"{info.uses_allowed} uses" if info.uses_allowed else "unlimited uses"
    expiry = f"expires {output.iso(info.expires_at)}" if info.expires_at else "never expires"
    networks = f"from {', '.join(info.cidrs)} only" if info.cidrs else "from any network"
    return f"{uses}, {expiry}, {networks}"
