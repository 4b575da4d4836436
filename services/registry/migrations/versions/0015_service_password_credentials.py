"""The service password as a per-handshake SCRAM credential (issue 11 item 5, ADR 0025).

`collector_passwords` keeps, per registered collector, its 'current' credential and,
during the overlap after `outpostctl collectors set-password`, the 'previous' one: the
argon2id salt and costs, the Ed25519 key the password is bound to, and the SCRAM
StoredKey = SHA-256(HMAC-SHA256(SaltedPassword, "Client Key")) — nothing that logs in.

Every registered collector's argon2id verifier converts without the password: the hash in
the PHC string *is* SaltedPassword (ADR 0025). The conversion is written out here, not
imported, so this migration means the same thing forever. Converted verifiers are then
blanked (a verifier on record is a password-equivalent; only `register`, which reads
pending collectors' verifiers, needs one). A verifier that does not convert (not argon2id
v=19 with a 32-byte hash) is kept and its collector has no credential: it is
authenticated by its key alone, as before, until an admin runs set-password.

`collectors.password_rotated_at` / `password_last_proved` are shown by `collectors show`.

Downgrade drops both; converted collectors keep a blank verifier (they are registered, so
nothing reads it).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PHC = re.compile(
    r"\$argon2id\$v=19\$m=(?P<m>[0-9]{1,10}),t=(?P<t>[0-9]{1,5}),p=(?P<p>[0-9]{1,5})"
    r"\$(?P<salt>[A-Za-z0-9+/]{11,86})\$(?P<hash>[A-Za-z0-9+/]{22,86})"
)


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _converted(verifier: str) -> tuple[bytes, int, int, int, bytes] | None:
    match = _PHC.fullmatch(verifier or "")
    if match is None:
        return None
    try:
        salt, digest = _b64(match["salt"]), _b64(match["hash"])
    except ValueError:
        return None
    m, t, p = int(match["m"]), int(match["t"]), int(match["p"])
    if len(digest) != 32 or not 8 <= len(salt) <= 64 or not (1 <= p <= 16 and 1 <= t <= 16 and 8 * p <= m <= 262_144):
        return None
    stored_key = hashlib.sha256(hmac.digest(digest, b"Client Key", "sha256")).digest()
    return salt, m, t, p, stored_key


def upgrade() -> None:
    op.create_table(
        "collector_passwords",
        sa.Column("instance_uid", sa.String(256), primary_key=True),
        sa.Column("slot", sa.String(16), primary_key=True),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.Column("memory_kib", sa.Integer(), nullable=False),
        sa.Column("time_cost", sa.Integer(), nullable=False),
        sa.Column("parallelism", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("stored_key", sa.LargeBinary(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("slot IN ('current', 'previous')", name="ck_collector_passwords_slot"),
    )
    with op.batch_alter_table("collectors") as batch:
        batch.add_column(sa.Column("password_rotated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("password_last_proved", sa.String(16), nullable=False, server_default=""))
    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    rows = bind.execute(
        sa.text("SELECT instance_uid, password_verifier, public_key FROM collectors WHERE state <> 'pending'")
    ).fetchall()
    for instance_uid, verifier, public_key in rows:
        converted = _converted(verifier)
        if converted is None:
            continue
        salt, m, t, p, stored_key = converted
        bind.execute(
            sa.text(
                "INSERT INTO collector_passwords (instance_uid, slot, salt, memory_kib, time_cost, parallelism, "
                "public_key, stored_key, set_at) VALUES (:uid, 'current', :salt, :m, :t, :p, :key, :stored, :now)"
            ),
            {
                "uid": instance_uid,
                "salt": salt,
                "m": m,
                "t": t,
                "p": p,
                "key": public_key,
                "stored": stored_key,
                "now": now,
            },
        )
        bind.execute(
            sa.text("UPDATE collectors SET password_verifier = '' WHERE instance_uid = :uid"), {"uid": instance_uid}
        )


def downgrade() -> None:
    with op.batch_alter_table("collectors") as batch:
        batch.drop_column("password_last_proved")
        batch.drop_column("password_rotated_at")
    op.drop_table("collector_passwords")
