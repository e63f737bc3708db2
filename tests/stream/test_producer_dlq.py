"""publish_click keys by user; the DLQ keeps the original bytes with the reason in headers."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from core.settings import KafkaSettings
from stream.dlq import HEADER_ERROR, HEADER_REASON, DeadLetter, DeadLetters, Source
from stream.events import ClickEvent, Rejection, decode
from stream.producer import ClickProducer, publish_click
from tests.stream.helpers import read_topic

pytestmark = pytest.mark.kafka


def test_publish_click_keyed_by_user_in_order(kafka: KafkaSettings) -> None:
    sent: list[ClickEvent] = []
    with ClickProducer(kafka) as producer:
        for i in range(60):
            sent.append(producer.publish_click(user_id=i % 6, item_id=100 + i))
    sent.append(publish_click(kafka, user_id=3, item_id=7, ts="2024-05-01T12:00:00Z", type="view"))

    records = read_topic(kafka, kafka.events_topic, len(sent))
    assert len(records) == len(sent)
    partitions: dict[int, set[int]] = defaultdict(set)
    per_user: dict[int, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode(record.value)
        assert isinstance(event, ClickEvent)
        assert record.key == str(event.user_id).encode()
        partitions[event.user_id].add(record.partition)
        per_user[event.user_id].append(event.event_id)
    assert all(len(p) == 1 for p in partitions.values())  # one partition per user
    assert len(set().union(*partitions.values())) > 1  # and users spread over partitions
    for user in range(6):
        assert per_user[user] == [e.event_id for e in sent if e.user_id == user]  # in order
    assert all(len(e.event_id) == 32 for e in sent[:-1])  # uuid4 hex
    assert sent[-1].ts == 1714564800000 and sent[-1].type == "view"


def test_dead_letters_keep_original_bytes_and_reason(kafka: KafkaSettings) -> None:
    bad = [
        b'{"user_id": 1',
        b"\xff\x00 not utf-8",
        json.dumps({"event_id": "x", "user_id": 5, "item_id": 99, "ts": 1}).encode(),
    ]
    with ClickProducer(kafka, topic=kafka.dlq_topic) as producer:
        dead = DeadLetters(producer.producer, kafka.dlq_topic)
        for offset, value in enumerate(bad):
            outcome = decode(value, known_items={1, 2})
            assert isinstance(outcome, Rejection)
            dead.send(
                value,
                outcome,
                key=b"5",
                source=Source(kafka.events_topic, 2, offset),
                headers=[("trace", b"abc"), (HEADER_REASON, b"spoofed")],
            )
        dead.send(None, "consumer gave up after 3 retries")
        producer.flush()

    records = sorted(read_topic(kafka, kafka.dlq_topic, 4), key=lambda r: (r.value is None, r.offset))
    assert len(records) == 4
    letters = [DeadLetter.from_record(r) for r in records]
    assert [letter.value for letter in letters[:3]] == bad  # byte for byte, in order (same key)
    assert [letter.code for letter in letters[:3]] == ["invalid_json", "invalid_json", "unknown_item"]
    assert letters[2].reason == "unknown_item: item_id 99 is not in the catalogue"
    assert letters[1].source == Source(kafka.events_topic, 2, 1)
    assert all(letter.key == b"5" and letter.headers == (("trace", b"abc"),) for letter in letters[:3])
    assert dict(records[0].headers)[HEADER_ERROR] == b"invalid_json"
    assert (
        letters[3].value is None
        and letters[3].key == b""
        and letters[3].reason == "rejected: consumer gave up after 3 retries"
    )
    assert letters[3].failed_at_ms and letters[3].failed_at_ms > 1_700_000_000_000
