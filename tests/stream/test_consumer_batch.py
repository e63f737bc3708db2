"""The consumer's per-batch processing without a broker: decoding against the catalogue, one
transaction per batch, idempotent re-application, and the small pure helpers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import IntegrityError, OperationalError

from core.settings import KafkaSettings
from store.active import ActiveModel
from store.engine import make_sessionmaker
from store.models import CatalogItem
from store.recommendations import latest_recommendations
from stream.batch import Catalogue, apply_batch, decode_batch
from stream.clients import Backoff, Clients
from stream.events import ClickEvent
from stream.fetch_wait import EMBEDDED_BUSY_MS, EMBEDDED_IDLE_MS, REMOTE_MS, FetchWait, embedded
from stream.metrics import ConsumerMetrics, percentile
from stream.options import is_transient_db_error
from stream.recommendations import RecommendationMessage
from tests.stream.consumer_helpers import NUM_ITEMS, SERVE, add_catalogue, publish_student


def record(value: bytes | None, offset: int, timestamp: int = 1_000) -> ConsumerRecord:
    return ConsumerRecord("events", 0, -1, offset, timestamp, 0, b"1", value, [], None, 1, len(value or b""), 0)


def click(event_id: str, user: int, item: int, ts: int) -> bytes:
    return ClickEvent(event_id=event_id, user_id=user, item_id=item, ts=ts).to_json()


def test_decode_batch_checks_the_catalogue_and_learns_new_items(sessions) -> None:
    add_catalogue(sessions, 10)
    catalogue = Catalogue(sessions)
    raws = [click("a", 1, 3, 1), b"{not json", click("b", 1, 11, 2), None, click("c", 2, 10, 3)]
    decoded = decode_batch([record(raw, i) for i, raw in enumerate(raws)], catalogue, max_bytes=4096)
    assert [event.event_id for _, event in decoded.valid] == ["a", "c"]
    assert sorted((r.offset, rej.code) for r, rej in decoded.rejected) == [
        (1, "invalid_json"),
        (2, "unknown_item"),
        (3, "empty"),
    ]
    assert "item_id 11 is not in the catalogue" in {r.offset: rej.reason for r, rej in decoded.rejected}[2]
    with sessions.begin() as session:  # the catalogue grows while the consumer runs
        session.add(CatalogItem(item_id=11, title="New", genres=""))
    again = decode_batch([record(click("b", 1, 11, 2), 2)], catalogue, max_bytes=4096)
    assert [event.item_id for _, event in again.valid] == [11] and not again.rejected


def test_a_batch_applied_twice_changes_nothing_and_replays_its_recommendations(
    engine, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    version = publish_student(sessions, tmp_path, seed=3)
    model = ActiveModel(make_sessionmaker(engine, read_only=True), SERVE, check_every=0).current()
    raws = [click(f"e{i}", user=i % 3, item=1 + i, ts=100 + i) for i in range(9)]
    records = [record(raw, i, timestamp=5_000 + i) for i, raw in enumerate(raws)]
    decoded = decode_batch(records, Catalogue(sessions), max_bytes=4096)
    metrics = ConsumerMetrics()

    first = apply_batch(sessions, decoded.valid, model, top_k=5, sequence_length=30, consumed_ms=6_000, metrics=metrics)
    assert (first.inserted, first.duplicates, first.touched_users, first.model_version) == (9, 0, 3, version)
    assert sorted(m.user_id for m in first.messages) == [0, 1, 2] and not any(m.replayed for m in first.messages)
    for message in first.messages:
        seen = {1 + i for i in range(9) if i % 3 == message.user_id}
        assert len(message.items) == 5 and not seen & set(message.items)
        assert message.event_id == f"e{6 + message.user_id}"  # the user's newest event in the batch
        assert message.published_ms == 5_006 + message.user_id and message.consumed_ms == 6_000
    with sessions() as session:
        stored = {user: latest_recommendations(session, user)[0] for user in (0, 1, 2)}

    again = apply_batch(sessions, decoded.valid, model, top_k=5, sequence_length=30, consumed_ms=7_000, metrics=metrics)
    assert (again.inserted, again.duplicates, again.touched_users) == (0, 9, 0)
    assert all(m.replayed for m in again.messages)
    assert {m.user_id: m.items for m in again.messages} == {u: list(r.items) for u, r in stored.items()}
    with sessions() as session:
        assert all(len(latest_recommendations(session, user, limit=5)) == 1 for user in (0, 1, 2))
    assert set(metrics.stage_seconds) >= {"sql", "encode", "search", "write"}


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_without_a_student_events_are_stored_without_recommendations(sessions) -> None:
    add_catalogue(sessions, NUM_ITEMS)
    decoded = decode_batch([record(click("x", 7, 2, 1), 0)], Catalogue(sessions), max_bytes=4096)
    applied = apply_batch(
        sessions, decoded.valid, None, top_k=5, sequence_length=30, consumed_ms=0, metrics=ConsumerMetrics()
    )
    assert (applied.inserted, applied.messages, applied.model_version) == (1, [], None)


def test_small_helpers() -> None:
    message = RecommendationMessage(4, 2, [5, 6], [0.5, 0.25], "e", 10, 1_000, 1_004, 1_010)
    payload = json.loads(message.to_json())
    assert payload["latency_ms"] == 10 and payload["items"] == [5, 6] and payload["replayed"] is False
    assert RecommendationMessage.from_json(message.to_json()) == message and message.key() == b"4"
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 99) == 5 and percentile([], 50) != percentile([], 50)
    assert percentile(range(101), 99) == 99
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5
    assert is_transient_db_error(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert not is_transient_db_error(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_transient_db_error(ValueError("bug"))


def test_fetch_wait_adapts_only_on_the_embedded_broker() -> None:
    """On the embedded broker the wait adapts (short while records flow, longer once idle; see
    stream.fetch_wait). On any other broker it stays long and fixed."""
    local = KafkaSettings(bootstrap_servers="127.0.0.1:19092,localhost:19093")
    assert embedded(local) and not embedded(KafkaSettings(bootstrap_servers="kafka:9092"))
    assert not embedded(local.model_copy(update={"embedded_broker": False}))
    assert FetchWait(KafkaSettings(bootstrap_servers="kafka:9092")).current_ms == REMOTE_MS
    assert FetchWait(local, 42).current_ms == 42 and not FetchWait(local, 42).adaptive

    class FakeFetcher:  # where kafka-python keeps the live setting
        config: ClassVar[dict[str, int]] = {"fetch_max_wait_ms": EMBEDDED_BUSY_MS}

    class FakeConsumer:
        _fetcher = FakeFetcher()

    wait = FetchWait(local, idle_after_s=1.0)
    consumer = FakeConsumer()
    wait.attach(consumer)
    assert wait.observe(True, now=0.0) == EMBEDDED_BUSY_MS
    assert wait.observe(False, now=0.5) == EMBEDDED_BUSY_MS
    assert wait.observe(False, now=1.5) == EMBEDDED_IDLE_MS == consumer._fetcher.config["fetch_max_wait_ms"]
    assert wait.observe(True, now=1.6) == EMBEDDED_BUSY_MS == consumer._fetcher.config["fetch_max_wait_ms"]
    detached = FetchWait(local)
    detached.attach(object())  # no adjustable setting: stays fixed
    assert detached.observe(False, now=1e9) == EMBEDDED_BUSY_MS


def test_the_real_kafka_python_keeps_an_adjustable_fetch_wait(kafka: KafkaSettings) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**kafka.client_options(), fetch_max_wait_ms=EMBEDDED_BUSY_MS)
    try:
        wait = FetchWait(kafka)
        wait.attach(consumer)
        assert wait.adaptive and wait.observe(False, now=time.monotonic() + 60) == EMBEDDED_IDLE_MS
        assert consumer._fetcher.config["fetch_max_wait_ms"] == EMBEDDED_IDLE_MS
    finally:
        consumer.close()


def test_settled_offsets_are_committed_together_once_the_interval_passes(kafka: KafkaSettings) -> None:
    """A settled batch's offsets wait for ``commit_interval_s``; ``wait=True`` (shutdown,
    backlog) commits at once; the broker then reports them committed."""
    clients = Clients(kafka, "t-commit-interval", send_timeout_s=10, commit_interval_s=3600)
    try:
        deadline = time.monotonic() + 30
        while not clients.assignment() and time.monotonic() < deadline:
            clients.poll(100)
        partition = TopicPartition(kafka.events_topic, 0)
        clients.publish([], [], {partition: OffsetAndMetadata(3, "", -1)})
        assert len(clients.settle(wait=False, timeout_s=10)) == 1
        assert clients.settled == {partition: OffsetAndMetadata(3, "", -1)} and not clients.uncommitted
        clients.publish([], [], {partition: OffsetAndMetadata(5, "", -1)})
        clients.settle(wait=True, timeout_s=10)
        assert not clients.settled
        while clients.consumer.committed(partition) != 5 and time.monotonic() < deadline:
            clients.poll(100)
        assert clients.consumer.committed(partition) == 5
    finally:
        clients.close(final_commit=False)
