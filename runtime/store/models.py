"""The tables. Alembic migrations in `migrations/versions/` create exactly these.

Times shown to API callers are `UTCDateTime`; times the store computes with (leases, timers,
the per-instance `ts`) are integer epoch milliseconds from the `Clock` seam.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from runtime.store.types import UTCDateTime


class Base(DeclarativeBase):
    pass


def table(model: type[Base]) -> Table:
    """A model's Core table, for hot paths that skip the ORM's unit of work."""
    return cast(Table, model.__table__)


class Meta(Base):
    """Server-wide key/value facts: the generated server secret, the default org and key."""

    __tablename__ = "server_meta"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Org(Base):
    """An organization. `allow_anonymous` switches its built-in anonymous token provider;
    `anonymous_key_id` is the key that service signs with, made on first use (no FK: a key
    deleted through `/keys` is simply made again)."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    allow_anonymous: Mapped[bool] = mapped_column(Boolean, server_default=true())
    anonymous_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


class Key(Base):
    """An API key. `secret` is AES-GCM ciphertext; only the server secret opens it."""

    __tablename__ = "keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_keys_org", "org_id", "created_at"),)


class OrgAdminKey(Base):
    """A key that may act in an org other than its own: the key that created the org through
    `POST /orgs`, as a State Backed user who creates an org becomes its admin."""

    __tablename__ = "org_admin_keys"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("keys.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_org_admin_keys_key", "key_id"),)


class IdentityProvider(Base):
    """Whose tokens an org trusts for token exchange, keyed by (aud, iss); "" means not
    configured (never both). `key` is the sealed HS* shared key (base64url text)."""

    __tablename__ = "identity_providers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    aud: Mapped[str] = mapped_column(String(1024))
    iss: Mapped[str] = mapped_column(String(1024))
    algs: Mapped[list[str]] = mapped_column(JSON)
    key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    jwks_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("org_id", "aud", "iss", name="uq_identity_providers_org"),)


class TokenProvider(Base):
    """A service name that mints backstate tokens: its mapping and the key that signs them.
    `key_id` has no FK: a provider whose key was deleted refuses to mint, and says why."""

    __tablename__ = "token_providers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("org_id", "service", name="uq_token_providers_org"),)


class Machine(Base):
    """A named machine. `current_version_id` has no FK: versions are owned by the machine."""

    __tablename__ = "machines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    slug: Mapped[str] = mapped_column(String(128))
    current_version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("org_id", "slug", name="uq_machines_org_slug"),)


class MachineVersion(Base):
    """A bundle. `provisional` until finalized; `bundle` is gzipped JS, set by the upload."""

    __tablename__ = "machine_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    machine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    client_info: Mapped[str] = mapped_column(Text, default="")
    bundle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The machine's structure for the dashboard's chart (`runtime/definitions.py`), extracted
    # when the version is finalized; NULL for versions finalized before it existed. Deferred:
    # only the definition endpoint reads it.
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, deferred=True)

    __table_args__ = (Index("ix_machine_versions_machine", "machine_id", "created_at"),)


class VersionMigration(Base):
    """A migration bundle between two versions of one machine (`upgradeState`,
    `upgradeContext`). `provisional` until finalized; `bundle` is gzipped JS, set by the upload.
    The final ones are the edges of the machine's migration graph (runtime/migrations.py)."""

    __tablename__ = "version_migrations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    machine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    from_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("machine_versions.id", ondelete="CASCADE")
    )
    to_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("machine_versions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    bundle: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_version_migrations_machine", "machine_id", "status", "created_at"),
    )


class Instance(Base):
    """One machine instance: its committed state plus the lease that serializes its steps.

    `ts` is the epoch-ms stamp of the current state (monotonic: max(now, previous + 1)); `seq`
    counts committed transitions. A step may only commit while `lease_token` is its own."""

    __tablename__ = "instances"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    machine_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("machines.id", ondelete="RESTRICT"))
    slug: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("machine_versions.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(16))
    state_json: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    view: Mapped[dict[str, Any]] = mapped_column(JSON)
    ts: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)
    cut_off: Mapped[list[str]] = mapped_column(JSON)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lease_waiter: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_waiter_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The version an upgrade is pending to (`PUT .../v`), applied at the instance's next event
    # delivered while it is settled (runtime/instances/upgrades.py); NULL when none is. No FK,
    # as `machines.current_version_id`: versions go only with their machine, which goes only
    # once it has no instances (and adding one would rebuild this table on SQLite).
    desired_version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    # A persistent child's parent: {"id", "machine", "instance", "invokeId"} (invokeId null when
    # spawned); its sendParent and, if invoked, its done.invoke go there. NULL for the others.
    parent: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("machine_id", "slug", name="uq_instances_machine_slug"),
        Index("ix_instances_machine_created", "machine_id", "created_at"),
        # Which instances run which version, and which have an upgrade pending (the dashboard).
        Index("ix_instances_machine_version", "machine_id", "version_id"),
        Index("ix_instances_machine_desired", "machine_id", "desired_version_id"),
    )


class Transition(Base):
    __tablename__ = "transitions"

    instance_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[Any] = mapped_column(JSON)
    state: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Timer(Base):
    """A durable delayed event, or an outbox entry, written in the transaction of the
    macrostep that armed it.

    One row per (instance, send_id): re-arming an id replaces the pending delivery."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    send_id: Mapped[str] = mapped_column(String(512))
    event: Mapped[Any] = mapped_column(JSON)
    due_at_ms: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claim_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # NULL: the instance's own delayed event. Otherwise the row is the instance's outbox: a child
    # to create or an event for another instance (runtime/results.Timer.delivery).
    delivery: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("instance_id", "send_id", name="uq_timers_instance_send"),
        Index("ix_timers_due", "due_at_ms"),
    )


# SQLite makes an `INTEGER PRIMARY KEY` the table's rowid (BigInteger would not be).
_ROW_ID = BigInteger().with_variant(Integer, "sqlite")


class StateChange(Base):
    """A committed state, kept a short while for realtime subscribers in other processes
    (`runtime/realtime/`): the instance row only holds the latest state, and a subscriber must
    see every one. Written by triggers on `instances` (migration 0008) in the transaction that
    writes the state.

    `id` grows in commit order on SQLite (writers are serialized), which lets a process tail the
    table; on PostgreSQL the trigger also notifies listeners. `view` is the public view as JSON
    text; `state_json` and `version_id` are what `allowRead` needs."""

    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    ts: Mapped[int] = mapped_column(BigInteger)
    version_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    view: Mapped[str] = mapped_column(Text)
    state_json: Mapped[str] = mapped_column(Text)


class MachineLog(Base):
    """One entry of a machine's console output (or a line of the runtime's own about it):
    consecutive lines of one step on one stream at one millisecond share an entry, as State
    Backed's `/logs` entries do. Names, not ids: entries outlive deleted instances."""

    __tablename__ = "machine_logs"

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    machine: Mapped[str] = mapped_column(String(128))
    instance: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    stream: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_machine_logs_org_ts", "org_id", "ts_ms", "id"),)
