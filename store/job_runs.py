"""The record of scheduled job runs: one row per run, written as it starts and when it ends.

A run is ``running`` until ``finish`` marks it ``succeeded`` (decision ``promoted`` or
``rejected``) or ``failed`` (decision ``failed``, with the reason); a run that found the lease
taken is recorded ``skipped``. A process that dies mid-run leaves its row ``running``: the next
holder of the lease marks such rows failed (``abandon_running``), since while it holds the lease
nobody else can be running. Functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import JOB_DECISIONS, JOB_RUN_STATUSES, JobRun, utcnow


class RunNotFound(LookupError):
    pass


def start(session: Session, job: str, holder: str, details: Mapping[str, Any] | None = None) -> JobRun:
    """Record a run that starts now."""
    run = JobRun(job=job, holder=holder, status="running", details=dict(details or {}), metrics={}, started_at=utcnow())
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> JobRun:
    run = session.get(JobRun, run_id, populate_existing=True)
    if run is None:
        raise RunNotFound(f"job run {run_id} does not exist")
    return run


def set_stage(session: Session, run_id: int, stage: str) -> None:
    session.execute(update(JobRun).where(JobRun.id == run_id).values(stage=stage))


def finish(
    session: Session,
    run_id: int,
    *,
    status: str,
    decision: str | None,
    reason: str | None,
    metrics: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    candidate_teacher_id: int | None = None,
    candidate_student_id: int | None = None,
    active_student_id: int | None = None,
) -> JobRun:
    """Close a run: its final status, decision and reason; metrics and details are merged in."""
    if status not in JOB_RUN_STATUSES or status == "running":
        raise ValueError(f"a finished run cannot be {status!r}")
    if decision is not None and decision not in JOB_DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; expected one of {', '.join(JOB_DECISIONS)}")
    run = get_run(session, run_id)
    run.status = status
    run.decision = decision
    run.reason = reason
    run.metrics = {**run.metrics, **(metrics or {})}
    run.details = {**run.details, **(details or {})}
    for name, value in (
        ("candidate_teacher_id", candidate_teacher_id),
        ("candidate_student_id", candidate_student_id),
        ("active_student_id", active_student_id),
    ):
        if value is not None:
            setattr(run, name, value)
    run.finished_at = utcnow()
    session.flush()
    return run


def record_skipped(session: Session, job: str, holder: str, reason: str) -> JobRun:
    """A run that did not happen (another holder had the lease), recorded for operators."""
    now = utcnow()
    run = JobRun(
        job=job, holder=holder, status="skipped", reason=reason, metrics={}, details={}, started_at=now, finished_at=now
    )
    session.add(run)
    session.flush()
    return run


def abandon_running(session: Session, job: str, reason: str) -> list[int]:
    """Mark ``running`` rows of ``job`` failed (their process died); call only while holding the lease."""
    ids = list(session.scalars(select(JobRun.id).where(JobRun.job == job, JobRun.status == "running")))
    if ids:
        session.execute(
            update(JobRun)
            .where(JobRun.id.in_(ids))
            .values(status="failed", decision="failed", reason=reason, finished_at=utcnow())
        )
    return ids


def list_runs(
    session: Session, job: str | None = None, status: str | None = None, limit: int | None = 20
) -> list[JobRun]:
    """Runs, newest first."""
    stmt = select(JobRun).order_by(JobRun.id.desc())
    if job is not None:
        stmt = stmt.where(JobRun.job == job)
    if status is not None:
        stmt = stmt.where(JobRun.status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))
