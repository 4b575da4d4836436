"""The registry's tables, as SQLAlchemy 2 declarative models.

`migrations/versions/` creates exactly these; a change here needs a new migration.
On PostgreSQL they live in the `registry` schema (chosen by `search_path`, so no schema
is named here); on SQLite in the registry's own file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from outpost.auth import audit
from outpost.store_types import UtcDateTime

REVISION_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""BIGINT on PostgreSQL; INTEGER on SQLite, where only that is an AUTOINCREMENT rowid."""


SPOOL_TYPE = sa.JSON(none_as_null=True)
"""The agent's SpoolStatus as a JSON object (see migration 0003 for why not columns).

`none_as_null`: Python None is SQL NULL ("never reported"), not the JSON text `null`, so
`COALESCE(new, old)` keeps the stored status when a report carries none.
"""


class Base(DeclarativeBase):
    pass


class ServerInstanceRow(Base):
    """The one row naming this server installation; collectors bind to its id."""

    __tablename__ = "server_instance"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CollectorRow(Base):
    __tablename__ = "collectors"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_collectors_name"),
        sa.CheckConstraint("state IN ('pending', 'enabled', 'disabled')", name="ck_collectors_state"),
        # `collectors list --zone` pages by (name, instance_uid) within a zone (ADR 0027).
        sa.Index("ix_collectors_zone_name_instance_uid", "zone", "name", "instance_uid"),
    )

    instance_uid: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    zone: Mapped[str] = mapped_column(sa.String(256), default="")
    version: Mapped[str] = mapped_column(sa.String(256), default="")
    username: Mapped[str] = mapped_column(sa.String(256))
    password_verifier: Mapped[str] = mapped_column(sa.String(512))
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary())
    fingerprint: Mapped[str] = mapped_column(sa.String(128))
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    state_reason: Mapped[str] = mapped_column(sa.Text(), default="")
    state_changed_by: Mapped[str] = mapped_column(sa.String(256), default="")
    remote_address: Mapped[str] = mapped_column(sa.String(256), default="")
    transport: Mapped[str] = mapped_column(sa.String(64), default="")
    access_key_id: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    """The access key whose sealed handshake admitted the collector last (migration 0010)."""
    gateway_id: Mapped[str] = mapped_column(sa.String(256), default="", index=True)
    session_id: Mapped[str] = mapped_column(sa.String(256), default="")
    connected: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revision: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    last_error: Mapped[str] = mapped_column(sa.Text(), default="")
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Raw X25519 key; NULL until the collector announces one, then set once (0002).
    encryption_public_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary(), nullable=True)
    # Status from heartbeats (0003): when its state last changed; when a gateway last listed
    # its session; collector clock minus gateway clock; its spool at the last report.
    state_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    clock_skew_ms: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    spool: Mapped[dict[str, Any] | None] = mapped_column(SPOOL_TYPE, nullable=True)
    # A polling collector's wait between check-ins as its gateway reported it; 0 for a
    # streaming session (0007). The online rule reads it (`domain.collectors.online_window`).
    check_in_seconds: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    # Sealed-secret algorithm ids its last accepted hello listed, as a JSON array; NULL: none
    # listed, so credentials are sealed with the legacy algorithm (0008, ADR 0020).
    sealing_algorithms: Mapped[list[str] | None] = mapped_column(SPOOL_TYPE, nullable=True)
    # The enrollment token that registered it, "enrollment-token:<name>"; "" when an admin did (0011).
    enrolled_by: Mapped[str] = mapped_column(sa.String(128), default="", server_default="")
    # When it last replaced its identity key (RotateCollectorKey, 0014); NULL: never.
    key_rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Service password (0015, ADR 0025): when `set-password` last replaced it (NULL: never);
    # which credential the last accepted handshake proved ("current", "previous", "": none
    # since the last change).
    password_rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    password_last_proved: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")


class CollectorPasswordRow(Base):
    """A registered collector's service-password credentials (0015, ADR 0025): SCRAM StoredKey
    with its argon2id salt, costs and bound key; 'current', and 'previous' during an overlap."""

    __tablename__ = "collector_passwords"
    __table_args__ = (sa.CheckConstraint("slot IN ('current', 'previous')", name="ck_collector_passwords_slot"),)

    instance_uid: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    slot: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    salt: Mapped[bytes] = mapped_column(sa.LargeBinary())
    memory_kib: Mapped[int] = mapped_column(sa.Integer())
    time_cost: Mapped[int] = mapped_column(sa.Integer())
    parallelism: Mapped[int] = mapped_column(sa.Integer())
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary())
    stored_key: Mapped[bytes] = mapped_column(sa.LargeBinary())
    set_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CollectorEventRow(Base):
    """The change log; `revision` is the registry's global, gap-tolerant revision."""

    __tablename__ = "collector_events"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('state_changed', 'removed', 'credentials')", name="ck_collector_events_kind"),
        {"sqlite_autoincrement": True},
    )

    revision: Mapped[int] = mapped_column(REVISION_TYPE, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    instance_uid: Mapped[str] = mapped_column(sa.String(256))
    name: Mapped[str] = mapped_column(sa.String(256))
    # The collector's zone when the event was written (0004); "" for older events.
    zone: Mapped[str] = mapped_column(sa.String(256), default="")
    state: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.Text(), default="")
    changed_by: Mapped[str] = mapped_column(sa.String(256), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NameConflictRow(Base):
    __tablename__ = "name_conflicts"

    name: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    instance_uid: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(128))
    held_by_fingerprint: Mapped[str] = mapped_column(sa.String(128))
    remote_address: Mapped[str] = mapped_column(sa.String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(sa.BigInteger(), default=1)


class HandshakeRefusalRow(Base):
    """Refused handshakes, one row per (name, instance_uid, reason); bounded (0003).

    See `domain.refusals`: rows are pruned by age and count, so whoever can reach a
    gateway cannot grow this table without bound.
    """

    __tablename__ = "handshake_refusals"
    __table_args__ = (
        sa.UniqueConstraint("name", "instance_uid", "reason", name="uq_handshake_refusals_identity"),
        sa.Index("ix_handshake_refusals_instance_uid", "instance_uid"),
        sa.Index("ix_handshake_refusals_last_at", "last_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(REVISION_TYPE, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    instance_uid: Mapped[str] = mapped_column(sa.String(256))
    fingerprint: Mapped[str] = mapped_column(sa.String(128))
    remote_address: Mapped[str] = mapped_column(sa.String(256), default="")
    reason: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text(), default="")
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())
    count: Mapped[int] = mapped_column(sa.BigInteger(), default=1)


class HandshakeNonceRow(Base):
    """Challenge nonces of accepted proofs, each usable once (0005).

    The primary key is what makes a nonce single-use across registry replicas: a second
    insert of the same nonce fails in the database, whichever replica tries. Rows are
    deleted once `expires_at` passed: by then the nonce is refused as stale anyway.
    """

    __tablename__ = "handshake_nonces"

    nonce: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    """Hex of the nonce's bytes."""
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class CredentialRow(Base):
    """A discovery credential; `secret` is AES-256-GCM ciphertext (tag included).

    The plaintext is the agent protocol's `Credential` message, encrypted under the
    registry's secret key `key_id` with `nonce`, bound to (type, name) as associated data.
    `username` is the non-secret part, kept in clear so admins can list it.
    """

    __tablename__ = "credentials"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_credentials_name"),
        sa.CheckConstraint("type IN ('snmp_v2c', 'snmp_v3', 'ssh')", name="ck_credentials_type"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(REVISION_TYPE, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    type: Mapped[str] = mapped_column(sa.String(16))
    username: Mapped[str] = mapped_column(sa.String(256), default="")
    secret: Mapped[bytes] = mapped_column(sa.LargeBinary())
    nonce: Mapped[bytes] = mapped_column(sa.LargeBinary())
    key_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(256), default="")


class AdminTokenRow(Base):
    """An admin token: its name, role and lifetime, and only the SHA-256 of its secret."""

    __tablename__ = "admin_tokens"
    __table_args__ = (
        sa.UniqueConstraint("digest", name="uq_admin_tokens_digest"),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="ck_admin_tokens_role"),
    )

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    digest: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(256), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_by: Mapped[str] = mapped_column(sa.String(256), default="")
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AccessKeyRow(Base):
    """An access key: `secret` is AES-256-GCM ciphertext of its 32-byte PSK (0009).

    Encrypted, not hashed: gateways need the PSK itself for the Noise handshake. The
    associated data binds it to `key_id`, so a ciphertext copied to another row does not
    decrypt there. `revision` orders changes for WatchAccessKeys.
    """

    __tablename__ = "access_keys"
    __table_args__ = (
        sa.UniqueConstraint("revision", name="uq_access_keys_revision"),
        sa.Index(
            "uq_access_keys_live_name",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL AND replaced_by IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL AND replaced_by IS NULL"),
        ),
    )

    key_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    zone: Mapped[str | None] = mapped_column(sa.String(256), nullable=True)
    secret: Mapped[bytes] = mapped_column(sa.LargeBinary())
    nonce: Mapped[bytes] = mapped_column(sa.LargeBinary())
    encryption_key_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(256), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_by: Mapped[str] = mapped_column(sa.String(256), default="")
    revision: Mapped[int] = mapped_column(sa.BigInteger())
    replaced_by: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    """The key id that replaced this one (`access-keys rotate`, migration 0013); valid until `expires_at`."""


class ServerKeyRow(Base):
    """One of the server's X25519 static keys; `private_key` is ciphertext under the secret key (0009)."""

    __tablename__ = "server_keys"
    __table_args__ = (
        sa.UniqueConstraint("public_key", name="uq_server_keys_public_key"),
        sa.CheckConstraint("state IN ('current', 'next', 'retired')", name="ck_server_keys_state"),
        sa.Index(
            "uq_server_keys_one_current",
            "state",
            unique=True,
            sqlite_where=sa.text("state = 'current'"),
            postgresql_where=sa.text("state = 'current'"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(REVISION_TYPE, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    private_key: Mapped[bytes] = mapped_column(sa.LargeBinary())
    nonce: Mapped[bytes] = mapped_column(sa.LargeBinary())
    encryption_key_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    retires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """Until when a replaced key is still accepted (0012; set when its successor is announced)."""


class EnrollmentTokenRow(Base):
    """A zone enrollment token (0011, ADR 0022): only the SHA-256 of its secret is kept.

    `uses_used` only ever grows, by a conditional UPDATE in the transaction that enrolls a
    collector, so two collectors racing for the last use cannot both win. `cidrs` is a
    JSON array of normalised networks; empty: any source address.
    """

    __tablename__ = "enrollment_tokens"
    __table_args__ = (
        sa.Index(
            "uq_enrollment_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
        sa.CheckConstraint("uses_used >= 0 AND uses_allowed >= 0", name="ck_enrollment_tokens_uses"),
    )

    token_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    zone: Mapped[str] = mapped_column(sa.String(256))
    secret_digest: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    uses_allowed: Mapped[int] = mapped_column(sa.Integer(), default=0)
    uses_used: Mapped[int] = mapped_column(sa.Integer(), default=0)
    cidrs: Mapped[list[str]] = mapped_column(sa.JSON())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(sa.String(256), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_by: Mapped[str] = mapped_column(sa.String(256), default="")


metadata = Base.metadata

AUDIT_EVENTS = audit.define_table(metadata)
"""Every change made through an admin RPC (`outpost.auth.audit`)."""
