"""`outpostctl access-keys ...`: the keys collectors present before the gateway reads anything of them.

`create` prints the key text once (`--json`: `{"name","key_id","zone","expires_at",
"access_key"}`), with the fingerprint of the server key it pins; nothing shows the
secret again. Give the text to collectors as `--access-key-file` (mode 0600) or
`OUTPOST_ACCESS_KEY`. `revoke` reaches every gateway within a second; sessions opened
with the key are refused at their next handshake (a rotated name: both of its keys).

`rotate NAME` gives the name a new key and prints its text once, like `create`; the old
key keeps working for `--overlap` (default 7d), and collectors connected meanwhile are
handed the new key over their sealed session (ADR 0024), so only collectors offline for
the whole overlap, and new installs, need the new text.
"""

from __future__ import annotations

from typing import Annotated

import typer

from outpostctl import listing, output
from outpostctl.access_client import AccessKeyClient, AccessKeyInfo
from outpostctl.endpoints import endpoints_of
from outpostctl.options import JsonFlag
from outpostctl.tokens import parse_duration

app = typer.Typer(
    help="Access keys collectors present (the sealed session's key): create (shown once), list, rotate, revoke.",
    no_args_is_help=True,
)

DEFAULT_OVERLAP = "7d"

KeyName = Annotated[str, typer.Argument(metavar="NAME", help="The key's name, e.g. the site it is for.")]


@app.command("create")
def create_access_key(
    ctx: typer.Context,
    name: KeyName,
    *,
    zone: Annotated[
        str, typer.Option("--zone", metavar="ZONE", help="Admit only collectors of this zone (default: any).")
    ] = "",
    expires: Annotated[
        str | None, typer.Option("--expires", metavar="DURATION", help="e.g. 90d, 12h (default: never).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an access key and print it, once."""
    seconds = parse_duration(expires) if expires else 0
    with AccessKeyClient(endpoints_of(ctx)) as client:
        created = client.create(name, zone=zone, expires_in_seconds=seconds)
    info = created.info
    if as_json:
        output.print_json(
            {
                "name": info.name,
                "key_id": info.key_id,
                "zone": info.zone or None,
                "expires_at": info.expires_at,
                "access_key": created.access_key,
                "server_key_fingerprint": created.server_key_fingerprint,
            }
        )
        return
    output.print_line(created.access_key)
    expiry = f"expires {output.iso(info.expires_at)}" if info.expires_at else "never expires"
    zone_note = f"zone {info.zone}" if info.zone else "any zone"
    output.print_note(
        f"access key '{info.name}' ({info.key_id}, {zone_note}, {expiry}); it pins server key "
        f"{created.server_key_fingerprint}. The line above is shown only now: give it to collectors "
        "as --access-key-file (mode 0600) or OUTPOST_ACCESS_KEY"
    )


@app.command("rotate")
def rotate_access_key(
    ctx: typer.Context,
    name: KeyName,
    *,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            metavar="DURATION",
            help="How long the old key keeps working, e.g. 7d, 12h (never past its own expiry).",
        ),
    ] = DEFAULT_OVERLAP,
    expires: Annotated[
        str | None, typer.Option("--expires", metavar="DURATION", help="The new key's expiry (default: never).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give NAME a new key and print it, once; the old key works until the overlap ends."""
    overlap_seconds = parse_duration(overlap, "--overlap")
    seconds = parse_duration(expires) if expires else 0
    with AccessKeyClient(endpoints_of(ctx)) as client:
        rotated = client.rotate(name, overlap_seconds=overlap_seconds, expires_in_seconds=seconds)
    info, old = rotated.info, rotated.replaced
    if as_json:
        output.print_json(
            {
                "name": info.name,
                "key_id": info.key_id,
                "zone": info.zone or None,
                "expires_at": info.expires_at,
                "access_key": rotated.access_key,
                "server_key_fingerprint": rotated.server_key_fingerprint,
                "replaced_key_id": old.key_id,
                "replaced_valid_until": old.expires_at,
            }
        )
        return
    output.print_line(rotated.access_key)
    output.print_note(
        f"access key '{info.name}' rotated: new key {info.key_id} (pins server key "
        f"{rotated.server_key_fingerprint}); the old key {old.key_id} works until {output.iso(old.expires_at)}. "
        "Connected collectors receive the new key by themselves; the line above is shown only now: put it in "
        "the --access-key-file / OUTPOST_ACCESS_KEY Secret for new installs and for collectors offline until then"
    )


@app.command("list")
def list_access_keys(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    limit: listing.Limit = None,
    page_token: listing.PageToken = "",
    as_json: JsonFlag = False,
) -> None:
    """Access keys by name, every page, never their secrets."""
    with AccessKeyClient(endpoints_of(ctx)) as client:
        listing.print_rows(
            listing.Listing(
                lambda size, token: client.list_page(include_revoked=include_revoked, page_size=size, page_token=token),
                limit=limit,
                page_token=page_token,
            ),
            noun="access keys",
            headers=["NAME", "ID", "ZONE", "CREATED", "BY", "EXPIRES", "STATE"],
            row=lambda k: [
                k.name,
                k.key_id,
                k.zone or "any",
                output.ago(k.created_at),
                k.created_by,
                output.until(k.expires_at) if k.expires_at else "never",
                _state(k),
            ],
            as_json=as_json,
            empty="no access keys",
        )


@app.command("revoke")
def revoke_access_key(ctx: typer.Context, name: KeyName) -> None:
    """Revoke an access key: every gateway refuses it within a second."""
    with AccessKeyClient(endpoints_of(ctx)) as client:
        key = client.revoke(name)
    output.print_line(f"revoked access key '{key.name}' ({key.key_id})")


def _state(key: AccessKeyInfo) -> str:
    if key.revoked_at:
        return f"revoked {output.ago(key.revoked_at)} by {key.revoked_by}"
    if key.replaced_by and key.state == "valid":
        return f"valid, replaced by {key.replaced_by}"
    return key.state
