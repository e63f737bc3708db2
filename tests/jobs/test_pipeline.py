"""The refit pipeline end to end on real SQL (SQLite and PostgreSQL), the real MiniLM teacher
(one layer), real FAISS, the real stream consumer over a Kafka-protocol broker: promotion and hot
swap under live traffic, rejection, failure under the scheduler, one run at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.data.dataset import Dataset, Item
from core.settings import KafkaSettings
from core.models.artifacts import load_model
from jobs.pipeline import RefitPipeline
from store import job_runs, lease, registry
from store.engine import create_engine_for, make_sessionmaker
from store.load import upsert_items
from store.models import Event, Recommendation
from tests.jobs.conftest import tiny_settings
from tests.jobs.helpers import LiveClicks, refit
from tests.stream.consumer_helpers import consumer_thread, event_count, fast_group, wait_until

pytestmark = pytest.mark.slow
NEW_ITEMS = 3


@pytest.mark.kafka
def test_refits_promote_and_the_stream_consumer_swaps_versions_without_losing_events(
        store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path, ml100k_slice: Dataset,
        kafka: KafkaSettings) -> None:
    settings = tiny_settings(database_url, tmp_path / "artifacts", tolerance=1.0, keep_versions=1)
    sessions = make_sessionmaker(store_engine)
    first = refit(settings, store_engine, text_cache)
    assert (first.status, first.decision) == ("succeeded", "promoted") and "first candidate" in first.reason
    v1 = first.versions["candidate_student"]

    # The catalogue grows while users keep clicking through Kafka, new items included.
    n = ml100k_slice.num_items
    with sessions.begin() as session:
        upsert_items(session, [Item(n + i, f"A new film {i}", 2030, ("Drama",)) for i in range(1, NEW_ITEMS + 1)])
    clicks = LiveClicks(kafka, users=sorted(ml100k_slice.sequences)[:20], items=range(n - 20, n + NEW_ITEMS + 1))
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        clicks.start()
        try:
            wait_until(lambda: consumer.metrics.records >= 20, 60, "the consumer to apply live clicks")
            second = refit(settings, store_engine, text_cache)
            v2 = second.versions["candidate_student"]
            wait_until(lambda: consumer.active.loaded.version_id == v2, 60, "the consumer to load the new version")
            applied = consumer.metrics.records
            wait_until(lambda: consumer.metrics.records >= applied + 20, 60, "clicks served by the new version")
        finally:
            clicks.stop()
        assert clicks.error is None
        wait_until(lambda: event_count(sessions) == ml100k_slice.num_interactions + len(clicks.sent), 60,
                   "every click in SQL")
    assert (second.status, second.decision) == ("succeeded", "promoted"), second.reason
    assert second.versions["active_student"] == v1

    # Every live event was applied once; the version on recommendations switched once, v1 -> v2.
    with sessions() as session:
        stored = list(session.scalars(select(Event.event_id).where(Event.event_id.like("live-%"))))
        recorded = list(session.scalars(select(Recommendation.model_version_id).order_by(Recommendation.id)))
        run = job_runs.get_run(session, second.run_id)
        teacher = registry.get_version(session, second.versions["candidate_teacher"])
        old_student = registry.get_version(session, v1)
        assert registry.get_active(session, "student").id == v2 and old_student.status == "retired"
    assert sorted(stored) == sorted(clicks.sent) and len(set(stored)) == len(stored)
    assert set(recorded) == {v1, v2} and recorded == sorted(recorded, key=[v1, v2].index)
    # The refit saw the streamed events and warm-started the teacher over the grown catalogue.
    assert run.details["teacher_start"] == f"warm from v{first.versions['candidate_teacher']}"
    assert run.details["data"]["items"] == n + NEW_ITEMS
    assert run.details["data"]["interactions"] > ml100k_slice.num_interactions
    assert load_model(teacher.artifact_path).num_items == n + NEW_ITEMS
    # keep_versions=1: the retired run-1 artifacts are gone, the active ones stay.
    assert not Path(old_student.artifact_path).exists() and Path(teacher.artifact_path).exists()


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_degraded_candidate_is_rejected_and_a_dead_runs_lease_is_taken_over(
        store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path) -> None:
    sessions = make_sessionmaker(store_engine)
    first = refit(tiny_settings(database_url, tmp_path / "artifacts"), store_engine, text_cache)
    assert first.decision == "promoted"
    # A run whose process died: its lease expired, its record still says running.
    with sessions.begin() as session:
        assert lease.try_acquire(session, "refit", "gone:1:dead", ttl_seconds=0.05)
        dead = job_runs.start(session, "refit", "gone:1:dead").id
    time.sleep(0.1)
    degraded = refit(tiny_settings(database_url, tmp_path / "artifacts", student_epochs=0), store_engine, text_cache)
    assert (degraded.status, degraded.decision) == ("succeeded", "rejected")
    assert "worse than the active student" in degraded.reason
    candidate, active = degraded.metrics["candidate"]["NDCG@10"], degraded.metrics["active"]["NDCG@10"]
    assert candidate < active - 0.005
    with sessions() as session:
        student = registry.get_version(session, degraded.versions["candidate_student"])
        teacher = registry.get_version(session, degraded.versions["candidate_teacher"])
        assert (student.status, student.note) == ("rejected", degraded.reason)
        assert teacher.status == "rejected" and degraded.reason in teacher.note
        assert registry.get_active(session, "student").id == first.versions["candidate_student"]
        assert registry.get_active(session, "teacher").id == first.versions["candidate_teacher"]
        run = job_runs.get_run(session, degraded.run_id)
        assert (run.status, run.decision, run.reason) == ("succeeded", "rejected", degraded.reason)
        assert run.metrics["candidate"]["NDCG@10"] == candidate and run.metrics["active"]["NDCG@10"] == active
        assert run.active_student_id == first.versions["candidate_student"] and run.finished_at is not None
        abandoned = job_runs.get_run(session, dead)
        assert (abandoned.status, abandoned.decision) == ("failed", "failed") and "abandoned" in abandoned.reason
        assert lease.current(session, "refit") is None


def test_two_pipelines_started_together_run_once(store_engine: Engine, database_url: str, tmp_path: Path,
                                                 text_cache: Path) -> None:
    settings = tiny_settings(database_url, tmp_path / "artifacts")
    engines = [create_engine_for(database_url) for _ in range(2)]  # as two processes would
    barrier = threading.Barrier(2)
    outcomes = {}

    def start(index: int) -> None:
        pipeline = RefitPipeline(settings, engines[index], text_cache=text_cache)
        barrier.wait()
        outcomes[index] = pipeline.run()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(o.status for o in outcomes.values()) == ["skipped", "succeeded"]
    skipped = next(o for o in outcomes.values() if o.status == "skipped")
    winner = next(o for o in outcomes.values() if o.status == "succeeded")
    assert "held by" in skipped.reason and winner.decision == "promoted"
    with make_sessionmaker(store_engine)() as session:
        assert len(registry.list_versions(session, "student")) == 1
        runs = {run.id: run.status for run in job_runs.list_runs(session)}
        assert runs == {winner.run_id: "succeeded", skipped.run_id: "skipped"}


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_run_failing_mid_way_changes_nothing_and_the_scheduler_runs_again(
        store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from jobs.scheduler import build_scheduler

    settings = tiny_settings(database_url, tmp_path / "artifacts", tolerance=1.0, interval_minutes=0.01)
    sessions = make_sessionmaker(store_engine)
    outcomes, active_after = [], []

    def fail_second_run(stage: str) -> None:
        if len(outcomes) == 1 and stage == "evaluate":
            raise RuntimeError("injected failure")

    def job() -> None:
        outcomes.append(refit(settings, store_engine, text_cache, on_stage=fail_second_run))
        with sessions() as session:
            active_after.append(registry.get_active(session, "student").id)

    scheduler = build_scheduler(job, settings.jobs, BackgroundScheduler(), run_at_start=True)
    scheduler.start()
    try:
        deadline = time.monotonic() + 240
        while len(outcomes) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    first, failed, third = outcomes[:3]
    assert (first.decision, failed.status, failed.decision, third.decision) == ("promoted", "failed", "failed",
                                                                                 "promoted")
    assert failed.reason == "evaluate: RuntimeError: injected failure"
    v1 = first.versions["candidate_student"]
    assert active_after[:2] == [v1, v1]  # the failed run left the active version alone
    with sessions() as session:
        run = job_runs.get_run(session, failed.run_id)
        assert (run.status, run.decision, run.stage, run.reason) == ("failed", "failed", "evaluate", failed.reason)
        assert run.finished_at is not None and run.active_student_id == v1
        for key in ("candidate_student", "candidate_teacher"):  # published before the failure, never served
            version = registry.get_version(session, failed.versions[key])
            assert version.status == "rejected" and version.activated_at is None and "failed" in version.note
        assert registry.get_active(session, "student").id == third.versions["candidate_student"]
        assert lease.current(session, "refit") is None
