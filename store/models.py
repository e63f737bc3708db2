"""The SQL schema as typed SQLAlchemy 2.0 models (the Alembic migrations mirror this file).

Times written by kdrec are timezone-aware UTC datetimes; event times (``ts``) are epoch
milliseconds as the producers send them. Lists (sequences, ranked items, scores) are JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MODEL_KINDS = ("teacher", "student")
MODEL_STATUSES = ("candidate", "active", "retired", "rejected")

# A 64-bit surrogate key that is still SQLite's auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; kdrec stores timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[int]: JSON()}


def table(model: type[Base]) -> Table:
    """A model's ``Table`` (``Model.__table__`` is typed as a plain ``FromClause``)."""
    return Base.metadata.tables[model.__tablename__]


class CatalogItem(Base):
    """An item of the catalogue; ``item_id`` is the dense id the models use (1..n)."""

    __tablename__ = "items"
    __table_args__ = (Index("ix_items_source_id", "source_id"),)

    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(512))
    year: Mapped[int | None] = mapped_column(Integer)
    genres: Mapped[str] = mapped_column(Text, default="", server_default="")
    """Genres joined with ``|``."""
    source_id: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[list[list[str]] | None] = mapped_column(JSON)
    """Further text fields the LM reads, ``[[column, value], ...]`` in order (None: none)."""


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_event_ts: Mapped[int] = mapped_column(BigInteger)
    """Epoch ms of the user's newest event."""


class Event(Base):
    """One interaction, stored once: ``event_id`` is the producer's idempotency key.

    No foreign keys on this hot, append-only table (they cost half of a bulk load on
    PostgreSQL): ``append_events`` upserts the user and checks item ids in the same batch.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_user_id_ts", "user_id", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    item_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[int] = mapped_column(BigInteger)
    """Epoch milliseconds when the interaction happened (producer time)."""
    type: Mapped[str] = mapped_column(String(32), default="click", server_default="click")
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())


class UserSequence(Base):
    """The user's most recent items (at most ``Settings.sequence_length``), oldest first."""

    __tablename__ = "user_sequences"

    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.user_id"), primary_key=True, autoincrement=False)
    items: Mapped[list[int]]
    timestamps: Mapped[list[int]]
    """Epoch ms of each entry of ``items``."""
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ModelVersion(Base):
    """A trained teacher or student; at most one ``active`` version per kind."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint("kind IN ('teacher', 'student')", name="kind"),
        CheckConstraint("status IN ('candidate', 'active', 'retired', 'rejected')", name="status"),
        Index(
            "uq_model_versions_one_active",
            "kind",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    artifact_path: Mapped[str] = mapped_column(String(1024))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="candidate", server_default="candidate")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """For a student: the teacher it was distilled from."""
    note: Mapped[str | None] = mapped_column(Text)
    """Why it was rejected or retired, when known."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]


class Recommendation(Base):
    """A ranked list served to a user, with the model and event that produced it."""

    __tablename__ = "recommendations"
    __table_args__ = (Index("ix_recommendations_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    items: Mapped[list[int]]
    scores: Mapped[list[float]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(64))
    event_ts: Mapped[int | None] = mapped_column(BigInteger)


JOB_RUN_STATUSES = ("running", "succeeded", "failed", "skipped")
JOB_DECISIONS = ("promoted", "rejected", "failed")


class JobRun(Base):
    """One run of a scheduled job (the refit pipeline): when, by whom, what it decided and why."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name="status"),
        CheckConstraint("decision IS NULL OR decision IN ('promoted', 'rejected', 'failed')", name="decision"),
        Index("ix_job_runs_job_started_at", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    holder: Mapped[str] = mapped_column(String(255))
    """The process that ran it (``host:pid:nonce``)."""
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    stage: Mapped[str | None] = mapped_column(String(32))
    """The stage in progress, or where a failed run stopped."""
    decision: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    candidate_teacher_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    candidate_student_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    active_student_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """The version the candidate was compared with (active when the run started)."""
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Holdout metrics: ``candidate``, ``active`` (students) and ``candidate_teacher``."""
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Stage timings, data size, budgets, how the teacher started."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class JobLock(Base):
    """A lease: at most one holder of ``name`` until ``expires_at`` (renewed while it works)."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class SkippedRecords(Base):
    """A record batch the consumer could not decode and skipped after its retries (``stream.poison``);
    its bytes and reason went to the dead-letter topic. One row per batch, written in the
    transaction of the consumer batch that skipped it (a redelivery writes nothing new)."""

    __tablename__ = "skipped_records"
    __table_args__ = (
        Index("ix_skipped_records_topic", "topic", "partition", "first_offset", "fingerprint", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    first_offset: Mapped[int] = mapped_column(BigInteger)
    last_offset: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """CRC-32 of the raw batch (0: unknown): a broker that lost its log reuses offsets."""
    reason: Mapped[str] = mapped_column(Text)
    skipped_at: Mapped[datetime] = mapped_column(default=utcnow)
