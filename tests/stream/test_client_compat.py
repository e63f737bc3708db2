"""Kafka clients other than kdrec's producer against the embedded broker over TCP.

kafka-python (kdrec's own client) and confluent-kafka (librdkafka): produce with ``acks=all``,
consume in a consumer group, commit, and a second member of the group, of either client, reads
the committed offsets back and resumes after them. Click events written by confluent-kafka in
kdrec's JSON format reach SQL through kdrec's consumer. The README section "Kafka clients and
the embedded broker" lists these and the clients checked by hand.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as RdTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from core.settings import KafkaSettings
from store.recommendations import latest_recommendations
from stream.events import ClickEvent
from stream.producer import ClickProducer
from tests.stream.consumer_helpers import (
    add_catalogue,
    assert_applied_exactly_once,
    click_stream,
    consumer_thread,
    event_count,
    fast_group,
    publish_student,
    send_all,
    wait_until,
)
from tests.stream.helpers import read_topic

pytestmark = pytest.mark.kafka
CLIENTS = ("kafka-python", "confluent-kafka")
PARTITIONS = 4  # kdrec's default topic partition count, created by the ``kafka`` fixture


# --- producing --------------------------------------------------------------------------------
def rd_producer(kafka: KafkaSettings, **overrides: object) -> Producer:
    """A librdkafka producer as a user's service would configure it, keyed like kdrec's producer
    (``murmur2_random``: the Java / kafka-python partitioner; librdkafka's default differs)."""
    return Producer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            **overrides,
        }
    )


def rd_send(producer: Producer, topic: str, messages: list[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Produce ``(key, value)`` pairs and wait for every acknowledgement; their (partition,
    offset), in the order sent."""
    acked: list[tuple[int, int] | None] = [None] * len(messages)
    failures: list[str] = []

    def delivered(index: int, error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))
        else:
            acked[index] = (message.partition(), message.offset())  # type: ignore[attr-defined]

    for index, (key, value) in enumerate(messages):
        producer.produce(topic, key=key, value=value, on_delivery=partial(delivered, index))
    assert producer.flush(30) == 0, "confluent-kafka did not deliver everything within 30 s"
    assert not failures, failures[:3]
    return [ack for ack in acked if ack is not None]


def produce(client: str, kafka: KafkaSettings, values: list[str]) -> dict[int, int]:
    """Produce ``values`` (keys cycle over 7 users) with acks=all and idempotence; the offset
    after the last record of each partition written to."""
    messages = [(str(i % 7).encode(), value.encode()) for i, value in enumerate(values)]
    if client == "kafka-python":
        producer = KafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
        try:
            futures = [producer.send(kafka.events_topic, key=key, value=value) for key, value in messages]
            acked = [(meta.partition, meta.offset) for meta in (future.get(timeout=30) for future in futures)]
        finally:
            producer.close()
    else:
        acked = rd_send(rd_producer(kafka), kafka.events_topic, messages)
    assert len(acked) == len(values)
    ends: dict[int, int] = {}
    for partition, offset in acked:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


# --- consuming in a group ---------------------------------------------------------------------
class GroupMember(Protocol):
    def poll_values(self, expected: int, timeout_s: float) -> list[str]: ...
    def commit(self) -> None: ...
    def committed(self) -> dict[int, int]: ...
    def close(self) -> None: ...


class KafkaPythonMember:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.topic = kafka.events_topic
        self.consumer = KafkaConsumer(
            self.topic,
            **kafka.client_options(),
            group_id=kafka.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        )

    def poll_values(self, expected: int, timeout_s: float) -> list[str]:
        values: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(values) < expected and time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=200).values():
                values.extend(record.value.decode() for record in records)
        return values

    def commit(self) -> None:
        self.consumer.commit()

    def committed(self) -> dict[int, int]:
        offsets = {p: self.consumer.committed(TopicPartition(self.topic, p)) for p in range(PARTITIONS)}
        return {p: offset for p, offset in offsets.items() if offset is not None}

    def close(self) -> None:
        self.consumer.close()


class ConfluentMember:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.topic = kafka.events_topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": kafka.consumer_group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": kafka.session_timeout_ms,
                "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
            }
        )
        self.consumer.subscribe([self.topic])

    def poll_values(self, expected: int, timeout_s: float) -> list[str]:
        values: list[str] = []
        deadline = time.monotonic() + timeout_s
        while len(values) < expected and time.monotonic() < deadline:
            message = self.consumer.poll(0.2)
            if message is None:
                continue
            value = message.value()
            assert message.error() is None and value is not None, f"confluent-kafka: {message.error()}"
            values.append(value.decode())
        return values

    def commit(self) -> None:
        self.consumer.commit(asynchronous=False)

    def committed(self) -> dict[int, int]:
        partitions = [RdTopicPartition(self.topic, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset for tp in self.consumer.committed(partitions, timeout=10) if tp.offset >= 0}

    def close(self) -> None:
        self.consumer.close()


def member(client: str, kafka: KafkaSettings) -> GroupMember:
    return KafkaPythonMember(kafka) if client == "kafka-python" else ConfluentMember(kafka)


@pytest.mark.parametrize(("first", "second"), [(a, b) for a in CLIENTS for b in CLIENTS], ids=lambda client: client)
def test_produce_consume_commit_and_resume(kafka: KafkaSettings, first: str, second: str) -> None:
    """``first`` produces, consumes in the group and commits; ``second`` reads the committed
    offsets back, produces more and resumes exactly after the commit."""
    kafka = fast_group(kafka)
    before = [f"a{i}" for i in range(20)]
    ends = produce(first, kafka, before)
    assert set(ends) == set(range(PARTITIONS))  # keys 0..6 reach every partition
    consumer = member(first, kafka)
    try:
        assert sorted(consumer.poll_values(len(before), timeout_s=30)) == sorted(before)
        consumer.commit()
        assert consumer.committed() == ends
    finally:
        consumer.close()

    after = [f"b{i}" for i in range(5)]
    resumed = member(second, kafka)
    try:
        assert resumed.committed() == ends  # read back by the other member (maybe the other client)
        later_ends = produce(second, kafka, after)
        values = resumed.poll_values(len(after), timeout_s=30)
        values += resumed.poll_values(1, timeout_s=0.5)  # and nothing older is delivered again
        assert sorted(values) == after
        resumed.commit()
        assert resumed.committed() == {**ends, **later_ends}
    finally:
        resumed.close()


def test_murmur2_partitioner_places_users_like_kdrec_producer(kafka: KafkaSettings) -> None:
    """With ``partitioner=murmur2_random`` a librdkafka producer sends a user's events to the
    partition kdrec's producer uses; librdkafka's default (``consistent_random``) does not."""
    events = [ClickEvent(event_id=f"p{user}", user_id=user, item_id=1, ts=0) for user in range(12)]
    with ClickProducer(kafka) as producer:
        futures = [producer.send(event) for event in events]
        kdrec_partitions = [future.get(timeout=30).partition for future in futures]
    messages = [(event.key(), event.to_json()) for event in events]

    def librdkafka_partitions(partitioner: str) -> list[int]:
        return [
            partition
            for partition, _ in rd_send(rd_producer(kafka, partitioner=partitioner), kafka.events_topic, messages)
        ]

    assert librdkafka_partitions("murmur2_random") == kdrec_partitions
    assert librdkafka_partitions("consistent_random") != kdrec_partitions


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_clicks_from_confluent_kafka_reach_sql_through_kdrec_consumer(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    """Half of each user's clicks come from kdrec's producer, half from confluent-kafka as
    hand-written JSON (ISO 8601 ``ts``, an extra field): all are stored once, in ``ts`` order,
    each user gets recommendations, and each user's records share one partition."""
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    stream = click_stream(60, users=6, prefix="mixed-")
    ours, theirs = stream.events[0::2], stream.events[1::2]
    send_all(kafka, ours)
    rd_send(
        rd_producer(kafka),
        kafka.events_topic,
        [
            (
                str(event.user_id).encode(),
                json.dumps(
                    {
                        "event_id": event.event_id,
                        "user_id": event.user_id,
                        "item_id": event.item_id,
                        "ts": iso_ms(event.ts),
                        "type": "click",
                        "source": "confluent-kafka",
                    }
                ).encode(),
            )
            for event in theirs
        ],
    )
    users = {event.user_id for event in stream.events}
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        wait_until(lambda: event_count(sessions) >= len(stream.events), 60, "all 60 clicks in SQL")
        wait_until(lambda: consumer.metrics.recommendations >= len(users), 30, "recommendations")
    assert consumer.metrics.rejected == 0
    assert_applied_exactly_once(sessions, stream)
    with sessions() as session:
        assert all(latest_recommendations(session, user) for user in users)
    partitions: dict[bytes, set[int]] = {}
    for record in read_topic(kafka, kafka.events_topic, len(stream.events)):
        partitions.setdefault(record.key, set()).add(record.partition)
    assert len(partitions) == len(users) and all(len(owned) == 1 for owned in partitions.values())
