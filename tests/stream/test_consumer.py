"""The stream consumer end to end: real broker over TCP, real SQL, a tiny real student, FAISS."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.settings import KafkaSettings
from store import registry
from store.models import Recommendation
from store.recommendations import latest_recommendations
from store.sequences import get_sequence
from stream.dlq import DeadLetter
from stream.producer import ClickProducer
from stream.recommendations import RecommendationMessage
from tests.stream.consumer_helpers import (
    NUM_ITEMS,
    SERVE,
    add_catalogue,
    assert_applied_exactly_once,
    click_stream,
    consumer_thread,
    event_count,
    fast_group,
    publish_student,
    send_all,
    wait_assigned,
    wait_until,
)
from tests.stream.helpers import read_topic

pytestmark = pytest.mark.kafka


def test_clicks_become_recommendations_that_exclude_seen_items(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    kafka = fast_group(kafka)
    add_catalogue(sessions)
    before = click_stream(30, users=3, prefix="before-")
    with consumer_thread(kafka, database_url) as consumer:
        # No student yet: events are stored, recommendations skipped.
        send_all(kafka, before.events)
        wait_until(lambda: event_count(sessions) == 30, 60, "the first 30 events in SQL")
        assert consumer.metrics.recommendations == 0
        version = publish_student(sessions, tmp_path, seed=1)
        wait_until(lambda: consumer.active.loaded is not None, 30, "the student to load")

        with ClickProducer(kafka) as producer:
            clicks = [
                producer.publish_click(user_id=user, item_id=item, ts=1_800_000_000_000 + i)
                for i, (user, item) in enumerate([(0, 5), (1, 6), (2, 7), (0, 8)])
            ]
        wait_until(lambda: event_count(sessions) == 34, 60, "the clicks in SQL")
        wait_until(lambda: consumer.metrics.recommendations >= 3, 30, "recommendations")

    with sessions() as session:
        for user in (0, 1, 2):
            seen, _ = get_sequence(session, user)
            assert seen[-1] == [c for c in clicks if c.user_id == user][-1].item_id
            rec = latest_recommendations(session, user)[0]
            assert rec.model_version_id == version
            assert len(rec.items) == SERVE.top_k and len(set(rec.items)) == SERVE.top_k
            assert not set(rec.items) & set(seen), "recommended an item the user has seen"
            assert all(1 <= item <= NUM_ITEMS for item in rec.items)
            assert rec.scores == sorted(rec.scores, reverse=True)
            assert rec.event_id in {c.event_id for c in clicks if c.user_id == user}
    messages = [
        RecommendationMessage.from_json(r.value)
        for r in read_topic(kafka, kafka.recommendations_topic, 3, timeout_s=20)
    ]
    assert {m.user_id for m in messages} == {0, 1, 2}
    for message in messages:
        assert message.model_version == version and len(message.items) == SERVE.top_k
        assert message.latency_ms is not None and message.latency_ms >= 0
        assert json.loads(message.to_json())["latency_ms"] == message.latency_ms
    assert_applied_exactly_once(sessions, type(before)(before.events + clicks))


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_malformed_events_go_to_the_dead_letter_topic(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    good = click_stream(2_000, users=100, prefix="g")
    kinds = [
        b'{"event_id": "x", "user_id": 1,',
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        json.dumps({"user_id": 1, "item_id": 2, "ts": 5}).encode(),
        json.dumps({"event_id": "w", "user_id": "1", "item_id": 2, "ts": 5}).encode(),
        json.dumps({"event_id": "u", "user_id": 1, "item_id": NUM_ITEMS + 7, "ts": 5}).encode(),
        json.dumps({"event_id": "o", "user_id": 1, "item_id": 2, "ts": 5, "pad": "x" * 5000}).encode(),
    ]
    bad = [kinds[i % len(kinds)] + (b"" if i % len(kinds) in (3, 4, 5, 6) else str(i).encode()) for i in range(1_000)]
    bad = [value.replace(b'"ts": 5', f'"ts": {i}'.encode()) for i, value in enumerate(bad)]  # all distinct
    with ClickProducer(kafka) as producer:
        for i, event in enumerate(good.events):
            producer.send(event)
            if i % 2 == 0:
                producer.producer.send(kafka.events_topic, key=b"1", value=bad[i // 2])
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        wait_until(lambda: consumer.metrics.records >= 3_000, 90, "all 3,000 records consumed")
    assert consumer.metrics.rejected == 1_000 and consumer.metrics.inserted == 2_000
    assert_applied_exactly_once(sessions, good)

    letters = [DeadLetter.from_record(r) for r in read_topic(kafka, kafka.dlq_topic, 1_000)]
    assert len(letters) == 1_000
    assert sorted(letter.value for letter in letters) == sorted(bad)  # original bytes, each once
    codes = {letter.code for letter in letters}
    assert codes == {"invalid_json", "missing_field", "wrong_type", "unknown_item", "oversized"}
    for letter in letters:
        assert letter.reason.startswith(letter.code + ": ") and len(letter.reason) > len(letter.code) + 2
        assert letter.source is not None and letter.source.topic == kafka.events_topic
        assert letter.key == b"1"


def test_two_consumers_split_the_partitions_and_apply_everything_once(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    kafka = fast_group(kafka)
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    stream = click_stream(4_000, users=300, prefix="two-")
    with consumer_thread(kafka, database_url) as first, consumer_thread(kafka, database_url) as second:
        wait_assigned([first, second], kafka.partitions)
        owned = (first.assignment(), second.assignment())
        send_all(kafka, stream.events)
        wait_until(lambda: event_count(sessions) == 4_000, 120, "4,000 events in SQL")
        wait_until(lambda: first.metrics.records + second.metrics.records >= 4_000, 30, "all records counted")
    assert not owned[0] & owned[1] and owned[0] | owned[1] == set(range(kafka.partitions))
    assert first.metrics.inserted > 0 and second.metrics.inserted > 0
    assert first.metrics.inserted + second.metrics.inserted == 4_000
    assert_applied_exactly_once(sessions, stream)
    with sessions() as session:
        users_with_recs = set(session.scalars(select(Recommendation.user_id)))
    assert users_with_recs == {event.user_id for event in stream.events}


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_hot_swap_between_batches(kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path) -> None:
    kafka = fast_group(kafka)
    add_catalogue(sessions)
    old = publish_student(sessions, tmp_path, seed=1)
    new = publish_student(sessions, tmp_path, seed=2, promote=False)
    stream = click_stream(3_000, users=200, prefix="swap-")
    with consumer_thread(kafka, database_url) as consumer:
        wait_assigned([consumer], kafka.partitions)
        publisher = threading.Thread(target=_send_at_rate, args=(kafka, stream, 1_000.0))
        publisher.start()
        wait_until(lambda: consumer.metrics.records >= 1_000, 60, "a third of the stream")
        with sessions.begin() as session:
            registry.promote(session, new)
        promoted_at = time.perf_counter()
        publisher.join()
        wait_until(lambda: event_count(sessions) == 3_000, 90, "3,000 events in SQL")
        # a few events after the swap for every user, so each one's newest list is recent
        tail = click_stream(200, users=200, prefix="after-", start_ts=1_900_000_000_000, seed=1)
        wait_until(lambda: consumer.active.loaded.version_id == new, 30, "the new version to load")
        send_all(kafka, tail.events)
        wait_until(lambda: event_count(sessions) == 3_200, 60, "the tail in SQL")
    assert_applied_exactly_once(sessions, type(stream)(stream.events + tail.events))
    log = list(consumer.metrics.batch_log)
    versions = [version for _, _, _, version in log]
    switch = versions.index(new)
    assert set(versions[:switch]) == {old} and set(versions[switch:]) == {new}  # one swap, between batches
    gaps = [log[i + 1][0] - log[i][1] for i in range(len(log) - 1)]
    around = gaps[max(0, switch - 3) : switch + 3]
    print(
        f"\nhot swap: promoted -> first batch on v{new} {log[switch][0] - promoted_at:.3f}s; "
        f"longest pause between batches around the swap {max(around) * 1000:.1f} ms, "
        f"overall {max(gaps) * 1000:.1f} ms over {len(log)} batches"
    )
    with sessions() as session:
        for user in {event.user_id for event in tail.events}:
            assert latest_recommendations(session, user)[0].model_version_id == new


def _send_at_rate(kafka: KafkaSettings, stream, rate: float) -> None:
    started = time.perf_counter()
    with ClickProducer(kafka) as producer:
        for i, event in enumerate(stream.events):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.send(event)
