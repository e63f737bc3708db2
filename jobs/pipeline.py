"""The scheduled refit: refit teacher -> redistil student -> rebuild FAISS index -> evaluate -> promote or reject.

One run at a time across processes and machines: a run first takes the database lease
(``store.lease``; renewed by a heartbeat, fenced again in the promoting transaction) and
otherwise records itself ``skipped``. Every run is recorded in ``job_runs``. The promotion (or
rejection) of both candidates and the run's final record are one transaction, so a failure at
any point leaves the active versions as they were; candidates of a failed run are rejected
with the reason, and once it holds the lease ``run()`` returns (never raises), so a scheduler
simply runs again later.
Consumers pick a promoted student up by themselves (``store.active.ActiveModel``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.settings import Settings
from core.training.recipes import release
from jobs import stages
from jobs.gate import GATE_METRIC, Decision, decide
from jobs.holdout import holdout_metrics, popularity_metrics
from store import job_runs, lease, registry
from store.engine import make_sessionmaker
from store.versions import prune_artifacts

log = logging.getLogger(__name__)
JOB = "refit"
STAGES = ("load", "teacher", "teacher_scores", "student", "index", "evaluate", "decide")
StageHook = Callable[[str], None]


@dataclass
class RunOutcome:
    status: str
    """``succeeded``, ``failed`` or ``skipped``."""
    decision: str | None
    reason: str
    run_id: int | None = None
    versions: dict[str, int | None] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class RefitPipeline:
    """One refit run per ``run()`` call (a new lease holder each time)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        on_stage: StageHook | None = None,
        progress: bool = False,
        text_cache: Path | None = None,
        job: str = JOB,
    ) -> None:
        self.settings = settings
        self.sessions = make_sessionmaker(engine)
        self.readers = make_sessionmaker(engine, read_only=True)
        self.on_stage = on_stage
        self.progress = progress
        self.text_cache = text_cache if text_cache is not None else Path(settings.artifact_dir) / "text-encodings"
        self.job = job

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        held = lease.HeldLease(self.sessions, self.job, self.settings.jobs.lock_ttl_seconds)
        if not held.acquire():
            return self._skip(held.holder)
        try:
            return _Run(self, held).execute()
        finally:
            held.release()

    def _skip(self, holder: str) -> RunOutcome:
        with self.sessions.begin() as session:
            row = lease.current(session, self.job)
            reason = (
                f"lease {self.job!r} held by {row.holder} until {row.expires_at:%Y-%m-%d %H:%M:%S} UTC"
                if row is not None
                else f"lease {self.job!r} was taken"
            )
            run = job_runs.record_skipped(session, self.job, holder, reason)
        log.info("refit skipped: %s", reason)
        return RunOutcome("skipped", None, reason, run.id)


class _Run:
    """The state of one run that holds the lease."""

    def __init__(self, pipeline: RefitPipeline, held: lease.HeldLease) -> None:
        self.p = pipeline
        self.settings = pipeline.settings
        self.held = held
        self.stage = "start"
        self.started = time.perf_counter()
        self.stage_started = self.started
        self.seconds: dict[str, float] = {}
        self.metrics: dict[str, Any] = {}
        self.details: dict[str, Any] = {}
        self.versions: dict[str, int | None] = {}

    def execute(self) -> RunOutcome:
        jobs = self.settings.jobs
        budget = {
            "teacher_epochs": jobs.teacher_epochs,
            "teacher_max_minutes": jobs.teacher_max_minutes,
            "student_epochs": jobs.student_epochs,
            "student_max_minutes": jobs.student_max_minutes,
            "tolerance": jobs.tolerance,
        }
        with self.p.sessions.begin() as session:
            abandoned = job_runs.abandon_running(
                session,
                self.p.job,
                f"abandoned: its process stopped before the run finished (lease expired; found by {self.held.holder})",
            )
            self.run_id = job_runs.start(session, self.p.job, self.held.holder, details={"budget": budget}).id
        if abandoned:
            log.warning("marked abandoned runs %s failed", abandoned)
        log.info("refit run %d started by %s", self.run_id, self.held.holder)
        try:
            decision = self._stages()
        except BaseException as exc:  # record every failure; re-raise only interrupts
            reason = f"{self.stage}: {type(exc).__name__}: {exc}"
            log.exception("refit run %d failed at %s", self.run_id, self.stage)
            self._record_failure(reason)
            if not isinstance(exc, Exception):
                raise
            return self._outcome("failed", "failed", reason)
        return self._outcome("succeeded", "promoted" if decision.promote else "rejected", decision.reason)

    def _enter(self, stage: str) -> None:
        now = time.perf_counter()
        if self.stage in STAGES:
            self.seconds[self.stage] = round(now - self.stage_started, 2)
        self.held.ensure()
        self.stage, self.stage_started = stage, now
        with self.p.sessions.begin() as session:
            job_runs.set_stage(session, self.run_id, stage)
        log.info("refit run %d: %s", self.run_id, stage)
        if self.p.on_stage is not None:
            self.p.on_stage(stage)

    def _stages(self) -> Decision:
        settings, progress = self.settings, self.p.progress
        self._enter("load")
        snapshot = stages.load(self.p.readers)
        self.details["data"] = snapshot.summary
        self.versions["active_student"] = snapshot.student.id if snapshot.student else None
        self.versions["active_teacher"] = snapshot.teacher.id if snapshot.teacher else None
        self._enter("teacher")
        teacher_result, how = stages.refit(snapshot, settings, self.p.text_cache, progress)
        self.details["teacher_start"] = how
        teacher = teacher_result.model
        self._enter("teacher_scores")
        cache = stages.score_windows(snapshot, teacher, settings, progress)
        self._enter("student")
        served = stages.distil(snapshot, cache, teacher, settings, self.p.text_cache, progress)
        del cache
        self._enter("index")
        candidates = stages.Candidates(
            teacher, served.model, teacher_result, served.result, how, student_text_map=served.text_map
        )
        label = f"run{self.run_id}-{self.held.holder.rsplit(':', 1)[-1]}"
        staged = stages.stage_candidates(candidates, settings, label, self.run_id)
        with self.p.sessions.begin() as session:
            teacher_version, student_version = stages.publish_candidates(session, staged, settings)
            self.versions["candidate_teacher"], self.versions["candidate_student"] = (
                teacher_version.id,
                student_version.id,
            )
        loaded = stages.load_candidate(student_version, settings, snapshot)
        self._enter("evaluate")
        holdout, num_items = snapshot.folds.test, snapshot.dataset.num_items
        self.metrics["candidate"] = holdout_metrics(loaded.model, holdout, num_items)
        self.metrics["candidate_teacher"] = holdout_metrics(teacher, holdout, num_items)
        release(teacher)  # the student is served from its artifact on the CPU
        release(served.model)
        active, note = stages.evaluate_active(snapshot.student, snapshot)
        if active is not None:
            self.metrics["active"] = active
        self._enter("decide")
        self.metrics["popularity"] = popularity_metrics(snapshot.folds, holdout)
        decision = decide(
            self.metrics["candidate"], active, settings.jobs.tolerance, GATE_METRIC, floor=self.metrics["popularity"]
        )
        decision = Decision(decision.promote, note + decision.reason)
        return self._decide(decision, snapshot.student.id if snapshot.student else None)

    def _decide(self, decision: Decision, evaluated_against: int | None) -> Decision:
        teacher_id, student_id = self.versions["candidate_teacher"], self.versions["candidate_student"]
        if teacher_id is None or student_id is None:
            raise RuntimeError("no candidate teacher and student were published: nothing to decide on")
        with self.p.sessions.begin() as session:
            lease.assert_held(session, self.p.job, self.held.holder)  # fencing: nobody else took over
            current = registry.get_active(session, "student")
            if (current.id if current else None) != evaluated_against:
                decision = Decision(
                    False,
                    f"the active student changed from v{evaluated_against} to "
                    f"v{current.id if current else None} during the run; not overriding it",
                )
            registry.record_metrics(session, student_id, {"holdout": self.metrics["candidate"]})
            registry.record_metrics(session, teacher_id, {"holdout": self.metrics["candidate_teacher"]})
            if decision.promote:
                registry.promote(session, student_id)
                registry.promote(session, teacher_id)
            else:
                registry.reject(session, student_id, decision.reason)
                registry.reject(session, teacher_id, f"its student v{student_id} was rejected: {decision.reason}")
            self.seconds["decide"] = round(time.perf_counter() - self.stage_started, 2)
            self.seconds["total"] = round(time.perf_counter() - self.started, 2)
            job_runs.finish(
                session,
                self.run_id,
                status="succeeded",
                decision="promoted" if decision.promote else "rejected",
                reason=decision.reason,
                metrics=self.metrics,
                details={**self.details, "seconds": self.seconds},
                candidate_teacher_id=teacher_id,
                candidate_student_id=student_id,
                active_student_id=evaluated_against,
            )
        log.info(
            "refit run %d %s student v%d: %s",
            self.run_id,
            "promoted" if decision.promote else "rejected",
            student_id,
            decision.reason,
        )
        self._prune()
        return decision

    def _prune(self) -> None:
        try:
            with self.p.sessions.begin() as session:
                removed = prune_artifacts(session, self.settings.jobs.keep_versions)
            if removed:
                log.info("refit run %d pruned %d artifact folders", self.run_id, len(removed))
        except Exception:  # the decision is made and recorded; old folders can wait for the next run
            log.exception("refit run %d: pruning artifacts failed", self.run_id)

    def _record_failure(self, reason: str) -> None:
        self.seconds[self.stage] = round(time.perf_counter() - self.stage_started, 2)
        self.seconds["total"] = round(time.perf_counter() - self.started, 2)
        try:
            with self.p.sessions.begin() as session:
                for kind in ("candidate_student", "candidate_teacher"):
                    version_id = self.versions.get(kind)
                    if version_id is not None and registry.get_version(session, version_id).status == "candidate":
                        registry.reject(session, version_id, f"refit run {self.run_id} failed: {reason}")
                job_runs.finish(
                    session,
                    self.run_id,
                    status="failed",
                    decision="failed",
                    reason=reason,
                    metrics=self.metrics,
                    details={**self.details, "seconds": self.seconds},
                    candidate_teacher_id=self.versions.get("candidate_teacher"),
                    candidate_student_id=self.versions.get("candidate_student"),
                    active_student_id=self.versions.get("active_student"),
                )
        except Exception:  # the row stays "running"; the next lease holder marks it abandoned
            log.exception("refit run %d: could not record the failure", self.run_id)

    def _outcome(self, status: str, decision: str | None, reason: str) -> RunOutcome:
        return RunOutcome(
            status, decision, reason, self.run_id, dict(self.versions), dict(self.metrics), dict(self.seconds)
        )
