"""The model registry: where training jobs, the stream consumer and the app agree on models.

Lifecycle: ``register`` → ``candidate``; ``promote`` makes it ``active`` and retires the
previous active version of the same kind in the same transaction (a partial unique index
guarantees at most one active version per kind); ``reject`` marks a candidate that failed
its gate; ``rollback`` re-activates the most recently active retired version.
Functions never commit: call them inside ``with sessions.begin() as session:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import MODEL_KINDS, MODEL_STATUSES, ModelVersion, utcnow


class RegistryError(ValueError):
    """An impossible transition (e.g. promoting a rejected version)."""


class VersionNotFound(LookupError):
    pass


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise RegistryError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")


def register(
    session: Session,
    kind: str,
    artifact_path: str,
    *,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    parent_id: int | None = None,
) -> ModelVersion:
    """Record a newly trained model as a ``candidate``; ``parent_id``: a student's teacher."""
    _check_kind(kind)
    if parent_id is not None:
        get_version(session, parent_id)
    version = ModelVersion(
        kind=kind,
        artifact_path=str(artifact_path),
        config=dict(config or {}),
        metrics=dict(metrics or {}),
        status="candidate",
        parent_id=parent_id,
    )
    session.add(version)
    session.flush()
    return version


def get_version(session: Session, version_id: int, *, lock: bool = False) -> ModelVersion:
    stmt = select(ModelVersion).where(ModelVersion.id == version_id)
    version = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if version is None:
        raise VersionNotFound(f"model version {version_id} does not exist")
    return version


def get_active(session: Session, kind: str) -> ModelVersion | None:
    """The version of ``kind`` in service, or None before the first promotion."""
    _check_kind(kind)
    return session.scalars(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == "active")
    ).first()


def list_versions(
    session: Session, kind: str | None = None, status: str | None = None, limit: int | None = None
) -> list[ModelVersion]:
    """Versions, newest first, optionally filtered by kind and status."""
    stmt = select(ModelVersion).order_by(ModelVersion.id.desc())
    if kind is not None:
        _check_kind(kind)
        stmt = stmt.where(ModelVersion.kind == kind)
    if status is not None:
        if status not in MODEL_STATUSES:
            raise RegistryError(f"unknown status {status!r}")
        stmt = stmt.where(ModelVersion.status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def promote(session: Session, version_id: int) -> ModelVersion | None:
    """Make a candidate (or retired) version active; returns the version it replaced, if any.

    All versions of the kind are locked first (``FOR UPDATE``), so concurrent promotions
    serialise; the old active version is retired before the new one is activated.
    """
    target = get_version(session, version_id)
    siblings = list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.kind == target.kind)
            .order_by(ModelVersion.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if target.status == "active":
        return None
    if target.status == "rejected":
        raise RegistryError(f"model version {version_id} was rejected and cannot be promoted")
    previous = next((v for v in siblings if v.status == "active"), None)
    if previous is not None:
        previous.status = "retired"
        previous.note = f"replaced by version {target.id}"
        session.flush()
    target.status = "active"
    target.activated_at = utcnow()
    session.flush()
    return previous


def reject(session: Session, version_id: int, reason: str | None = None) -> ModelVersion:
    """Mark a candidate that failed its quality gate; an active version cannot be rejected."""
    version = get_version(session, version_id, lock=True)
    if version.status == "active":
        raise RegistryError(f"model version {version_id} is active; promote another one first")
    version.status = "rejected"
    version.note = reason
    session.flush()
    return version


def rollback(session: Session, kind: str) -> ModelVersion:
    """Re-activate the retired version of ``kind`` that was active most recently."""
    _check_kind(kind)
    retired = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.kind == kind, ModelVersion.status == "retired", ModelVersion.activated_at.is_not(None))
        .order_by(ModelVersion.activated_at.desc(), ModelVersion.id.desc())
    ).first()
    if retired is None:
        raise RegistryError(f"no retired {kind} version to roll back to")
    promote(session, retired.id)
    return retired


def record_metrics(session: Session, version_id: int, metrics: Mapping[str, Any]) -> ModelVersion:
    """Merge evaluation metrics into a version's ``metrics``."""
    version = get_version(session, version_id, lock=True)
    version.metrics = {**version.metrics, **metrics}
    session.flush()
    return version
