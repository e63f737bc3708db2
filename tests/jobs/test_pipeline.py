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
from core.models.artifacts import load_model
from core.settings import KafkaSettings
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
    store_engine: Engine,
    database_url: str,
    tmp_path: Path,
    text_cache: Path,
    ml100k_slice: Dataset,
    kafka: KafkaSettings,
) -> None:
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
            new_ids = set(range(n + 1, n + NEW_ITEMS + 1))
            served = lambda: new_ids <= consumer.active.loaded.text_items  # noqa: E731
            wait_until(served, 60, "v1 to serve the new items from their text (its text map)")
            second = refit(settings, store_engine, text_cache)
            v2 = second.versions["candidate_student"]
            wait_until(lambda: consumer.active.loaded.version_id == v2, 60, "the consumer to load the new version")
            # v2 learnt the new items' ids: nothing of the catalogue is served from text any more
            assert consumer.active.loaded.model.num_items == n + NEW_ITEMS and not consumer.active.loaded.text_items
            applied = consumer.metrics.records
            wait_until(lambda: consumer.metrics.records >= applied + 20, 60, "clicks served by the new version")
        finally:
            clicks.stop()
        assert clicks.error is None
        wait_until(
            lambda: event_count(sessions) == ml100k_slice.num_interactions + len(clicks.sent), 60, "every click in SQL"
        )
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


def test_two_pipelines_started_together_run_once(
    store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path
) -> None:
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
def test_under_the_scheduler_a_failed_run_changes_nothing_and_a_degraded_candidate_is_rejected(
    store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path
) -> None:
    """Run 1 takes over a dead run's expired lease and promotes; run 2 fails mid-way (injected); run 3,
    at the next interval, distils for zero steps and is rejected by the gate."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from jobs.scheduler import build_scheduler

    settings = tiny_settings(database_url, tmp_path / "artifacts", interval_minutes=0.01)
    degraded = tiny_settings(database_url, tmp_path / "artifacts", student_epochs=0)
    sessions = make_sessionmaker(store_engine)
    with sessions.begin() as session:  # a run whose process died: lease expired, record still "running"
        assert lease.try_acquire(session, "refit", "gone:1:dead", ttl_seconds=0.05)
        dead = job_runs.start(session, "refit", "gone:1:dead").id
    time.sleep(0.1)
    outcomes, active_after = [], []

    def fail_second_run(stage: str) -> None:
        if len(outcomes) == 1 and stage == "evaluate":
            raise RuntimeError("injected failure")

    def job() -> None:
        if len(outcomes) >= 3:  # a 4th tick may fire before the loop below shuts the scheduler down
            return
        config = degraded if len(outcomes) == 2 else settings
        outcomes.append(refit(config, store_engine, text_cache, on_stage=fail_second_run))
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
    first, failed, rejected = outcomes[:3]
    v1 = first.versions["candidate_student"]
    assert (first.decision, failed.status, failed.decision) == ("promoted", "failed", "failed")
    assert failed.reason == "evaluate: RuntimeError: injected failure"
    assert (rejected.status, rejected.decision) == ("succeeded", "rejected")
    assert "worse than the active student" in rejected.reason
    candidate, active = rejected.metrics["candidate"]["NDCG@10"], rejected.metrics["active"]["NDCG@10"]
    assert candidate < active - settings.jobs.tolerance
    assert active_after[:3] == [v1, v1, v1]  # neither the failed nor the rejected run changed what is served
    with sessions() as session:
        abandoned = job_runs.get_run(session, dead)
        assert (abandoned.status, abandoned.decision) == ("failed", "failed") and "abandoned" in abandoned.reason
        run = job_runs.get_run(session, failed.run_id)
        assert (run.status, run.decision, run.stage, run.reason) == ("failed", "failed", "evaluate", failed.reason)
        assert run.finished_at is not None and run.active_student_id == v1
        for key in ("candidate_student", "candidate_teacher"):  # published before the failure, never served
            version = registry.get_version(session, failed.versions[key])
            assert version.status == "rejected" and version.activated_at is None and "failed" in version.note
        run = job_runs.get_run(session, rejected.run_id)
        assert (run.status, run.decision, run.reason) == ("succeeded", "rejected", rejected.reason)
        assert run.metrics["candidate"]["NDCG@10"] == candidate and run.metrics["active"]["NDCG@10"] == active
        student = registry.get_version(session, rejected.versions["candidate_student"])
        teacher = registry.get_version(session, rejected.versions["candidate_teacher"])
        assert (student.status, student.note) == ("rejected", rejected.reason)
        assert teacher.status == "rejected" and rejected.reason in teacher.note
        assert registry.get_active(session, "teacher").id == first.versions["candidate_teacher"]
        assert lease.current(session, "refit") is None
