"""Click events from a librdkafka producer (confluent-kafka), compressed with every standard
codec, and record batches the consumer cannot decode: real broker over TCP, real SQL."""

from __future__ import annotations

import logging
from pathlib import Path

import kafka.codec as kafka_codec
import pytest
from confluent_kafka import Producer
from sqlalchemy import select

from core.settings import KafkaSettings
from store.models import Event
from store.skipped import recent_skips, skipped_totals
from stream.dlq import DeadLetter
from stream.events import ClickEvent
from stream.options import ConsumerOptions
from tests.stream.consumer_helpers import (
    FAST,
    add_catalogue,
    click_stream,
    consumer_thread,
    event_count,
    fast_group,
    publish_student,
    wait_until,
)
from tests.stream.helpers import read_topic

pytestmark = pytest.mark.kafka
log = logging.getLogger(__name__)
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def librdkafka_send(kafka: KafkaSettings, events: list[ClickEvent], compression: str, key: bytes | None = None) -> None:
    """Publish like a user's service would: confluent-kafka, batching (linger) and compression."""
    producer = Producer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "compression.type": compression,
            "linger.ms": 50,
            "acks": "all",
            "enable.idempotence": False,
        }
    )
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for event in events:
        producer.produce(
            kafka.events_topic, value=event.to_json(), key=key or str(event.user_id).encode(), on_delivery=delivered
        )
    assert producer.flush(30) == 0, "confluent-kafka did not deliver everything within 30 s"
    assert not failures, failures[:3]


def stored_ids(sessions) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Event.event_id)))


def test_every_codec_from_a_librdkafka_producer_reaches_sql(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    streams = {
        codec: click_stream(200, users=40, prefix=f"{codec}-", start_ts=1_700_000_000_000 + 1_000 * i, seed=i)
        for i, codec in enumerate(CODECS)
    }
    for codec, stream in streams.items():
        librdkafka_send(kafka, stream.events, codec)
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        wait_until(lambda: event_count(sessions) >= 1_000, 90, "1,000 compressed events in SQL")
    stored = stored_ids(sessions)
    for codec, stream in streams.items():
        rows = len({e.event_id for e in stream.events} & stored)
        log.info("codec %s: %d of %d events in SQL", codec, rows, len(stream.events))
        assert rows == len(stream.events), codec
    assert consumer.metrics.rejected == 0 and consumer.metrics.skipped_batches == 0


def test_an_undecodable_batch_is_dead_lettered_and_its_partition_goes_on(
    kafka: KafkaSettings,
    database_url: str,
    sessions,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The consumer lacks lz4 (as it did before the codec became a dependency): the lz4 batch
    is retried, then skipped with a dead letter naming its offsets; the gzip events after it
    on the same partition are stored."""
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    key = b"same-partition"
    before, poisoned, after = (
        click_stream(20, users=5, prefix=p, start_ts=1_700_000_000_000 + 100 * i, seed=i)
        for i, p in enumerate(("before-", "lz4-", "after-"))
    )
    librdkafka_send(kafka, before.events, "none", key)
    librdkafka_send(kafka, poisoned.events, "lz4", key)  # one produce request: one record batch
    librdkafka_send(kafka, after.events, "gzip", key)
    monkeypatch.setattr(kafka_codec, "has_lz4", lambda: False)
    options = ConsumerOptions(**{**FAST.__dict__, "poison_attempts": 3, "backoff_initial_s": 0.1})
    with (
        caplog.at_level(logging.WARNING, logger="stream"),
        consumer_thread(fast_group(kafka), database_url, options) as consumer,
    ):
        wait_until(
            lambda: event_count(sessions) >= 40 and consumer.metrics.skipped_batches >= 1,
            60,
            "the events around the lz4 batch in SQL and the batch skipped",
        )
    assert stored_ids(sessions) == {e.event_id for e in before.events + after.events}
    m = consumer.metrics
    assert (m.skipped_batches, m.skipped_offsets, m.poison_retries) == (1, 20, 2)

    letters = [DeadLetter.from_record(r) for r in read_topic(kafka, kafka.dlq_topic, 1)]
    assert len(letters) == 1
    letter = letters[0]
    assert letter.code == "undecodable_batch" and "lz4" in letter.reason and "skipped" in letter.reason
    assert letter.source is not None and letter.source.topic == kafka.events_topic
    assert letter.skipped == (20, 39) and letter.source.offset == 20
    assert letter.value  # the raw record batch, kept for a later replay
    with sessions() as session:
        assert skipped_totals(session) == (1, 20)
        (skip,) = recent_skips(session)
    assert (skip.first_offset, skip.last_offset, skip.partition) == (20, 39, letter.source.partition)
    retries = [r for r in caplog.records if "could not be decoded (attempt" in r.getMessage()]
    assert [r.getMessage().split("(attempt ")[1][0] for r in retries] == ["1", "2"]
    assert any("offsets 20..39 could not be decoded after 3 attempts" in r.getMessage() for r in caplog.records)
