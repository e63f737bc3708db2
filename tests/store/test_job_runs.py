"""The job-run record on SQLite and PostgreSQL: start, stage, finish, skipped, abandoned runs."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store import job_runs, registry


def test_a_run_is_recorded_from_start_to_decision(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        student = registry.register(session, "student", "artifacts/s1")
        run = job_runs.start(session, "refit", "host:1:abc", details={"budget": {"teacher_epochs": 1}})
        job_runs.set_stage(session, run.id, "teacher")
    with sessions() as session:
        stored = job_runs.get_run(session, run.id)
        assert (stored.status, stored.stage, stored.finished_at) == ("running", "teacher", None)
    with sessions.begin() as session:
        job_runs.finish(
            session,
            run.id,
            status="succeeded",
            decision="rejected",
            reason="candidate NDCG@10 below active",
            metrics={"candidate": {"NDCG@10": 0.01}, "active": {"NDCG@10": 0.2}},
            details={"seconds": {"teacher": 1.5}},
            candidate_student_id=student.id,
        )
    with sessions() as session:
        done = job_runs.get_run(session, run.id)
        assert (done.status, done.decision, done.candidate_student_id) == ("succeeded", "rejected", student.id)
        assert done.metrics["active"]["NDCG@10"] == 0.2
        assert done.details == {"budget": {"teacher_epochs": 1}, "seconds": {"teacher": 1.5}}
        assert done.finished_at >= done.started_at and done.started_at.tzinfo is not None
        with pytest.raises(ValueError):
            job_runs.finish(session, run.id, status="running", decision=None, reason=None)
        with pytest.raises(ValueError):
            job_runs.finish(session, run.id, status="failed", decision="maybe", reason=None)
        with pytest.raises(job_runs.RunNotFound):
            job_runs.get_run(session, 999)


def test_skipped_and_abandoned_runs(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        dead = job_runs.start(session, "refit", "host:1:dead")
        other_job = job_runs.start(session, "other", "host:1:x")
        skipped = job_runs.record_skipped(session, "refit", "host:2:b", "lease held by host:1:dead")
    with sessions.begin() as session:
        assert job_runs.abandon_running(session, "refit", "its process stopped") == [dead.id]
    with sessions() as session:
        runs = job_runs.list_runs(session, job="refit")
        assert [r.id for r in runs] == [skipped.id, dead.id]  # newest first
        assert (runs[0].status, runs[0].decision) == ("skipped", None)
        assert (runs[1].status, runs[1].decision, runs[1].reason) == ("failed", "failed", "its process stopped")
        assert job_runs.get_run(session, other_job.id).status == "running"
        assert [r.id for r in job_runs.list_runs(session, status="failed")] == [dead.id]


def test_the_schema_rejects_unknown_statuses(sessions: sessionmaker[Session]) -> None:
    from store.models import JobRun

    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(JobRun(job="refit", holder="h", status="paused", metrics={}, details={}))
