"""`outpostctl tokens ...`: admin tokens for people and scripts (admin role only).

`create` prints the secret once (`--json`: `{"name","role","token"}`); nothing shows it
again. `revoke` holds from the token's next call on every service.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

import typer

from outpost.numbers import is_ascii_digits
from outpostctl import listing, output
from outpostctl.access_client import TokenClient
from outpostctl.endpoints import endpoints_of
from outpostctl.errors import CommandError
from outpostctl.options import JsonFlag

app = typer.Typer(help="Admin tokens: create (shown once), list, revoke.", no_args_is_help=True)

_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class RoleName(enum.StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


TokenName = Annotated[str, typer.Argument(metavar="NAME", help="The token's name, as the audit shows it.")]


def parse_duration(text: str, flag: str = "--expires", *, allow_zero: bool = False) -> int:
    """`90d`, `12h`, `1w2d`, `30m` or plain seconds, as whole seconds (> 0 unless `allow_zero`)."""
    text = text.strip().lower()
    if is_ascii_digits(text):
        seconds = int(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise CommandError(f"{flag} {text!r}: expected a duration like 90d, 12h, 30m or 1w2d")
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise CommandError(f"{flag} must be longer than 0 s")
    return seconds


@app.command("create")
def create_token(
    ctx: typer.Context,
    name: TokenName,
    *,
    role: Annotated[RoleName, typer.Option("--role", help="viewer, operator or admin.", case_sensitive=False)],
    expires: Annotated[
        str | None, typer.Option("--expires", metavar="DURATION", help="e.g. 90d, 12h (default: never).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a token and print its secret, once."""
    seconds = parse_duration(expires) if expires else 0
    with TokenClient(endpoints_of(ctx)) as client:
        created = client.create(name, role.value, seconds)
    if as_json:
        output.print_json({"name": created.name, "role": created.role, "token": created.token})
        return
    output.print_line(created.token)
    expiry = f"expires {output.iso(created.expires_at)}" if created.expires_at else "never expires"
    output.print_note(
        f"token '{created.name}' ({created.role}, {expiry}); the line above is shown only now: store it (mode 0600)"
    )


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """Tokens by name, every page, never their secrets."""
    with TokenClient(endpoints_of(ctx)) as client:
        listing.print_rows(
            listing.Listing(
                lambda size, token: client.list_page(include_revoked=include_revoked, page_size=size, page_token=token),
                limit=limit,
                page_token=page_token,
            ),
            noun="tokens",
            headers=["NAME", "ROLE", "CREATED", "BY", "EXPIRES", "LAST USED", "STATE"],
            row=lambda t: [
                t.name,
                t.role,
                output.ago(t.created_at),
                t.created_by,
                output.until(t.expires_at) if t.expires_at else "never",
                output.ago(t.last_used_at) if t.last_used_at else "never",
                f"revoked {output.ago(t.revoked_at)} by {t.revoked_by}" if t.revoked_at else "active",
            ],
            as_json=as_json,
            empty="no tokens",
        )


@app.command("revoke")
def revoke_token(ctx: typer.Context, name: TokenName) -> None:
    """Revoke a token: refused from its next call, on every service."""
    with TokenClient(endpoints_of(ctx)) as client:
        token = client.revoke(name)
    output.print_line(f"revoked token '{token.name}' ({token.role})")
