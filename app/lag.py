"""Consumer lag of the recommendation group: committed offsets vs log-end offsets, per partition.

Read with kafka-python only (no broker specifics). The end offset of a partition is the
larger of ``end_offsets()`` (ListOffsets) and the high watermark of a fetch from that offset:
some Kafka-protocol brokers (the embedded Tansu, see ``stream.broker``) answer ListOffsets with
an offset inside the last record batch, while fetch responses carry the right high watermark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from core.settings import KafkaSettings
from stream.net import any_reachable


class LagUnavailable(RuntimeError):
    """The broker cannot be reached or the topic does not exist; the message says which."""


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None
    """The group's committed offset (None: the group never committed on this partition)."""
    end: int
    lag: int


def _end_offsets(
    consumer: KafkaConsumer, partitions: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, int]:
    listed = consumer.end_offsets(partitions)
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, max(0, listed[tp] - 1))
    deadline = time.monotonic() + timeout_s
    watermarks: dict[TopicPartition, int] = {}
    while time.monotonic() < deadline and len(watermarks) < len(partitions):
        consumer.poll(timeout_ms=100, max_records=1)
        for tp in partitions:
            high = consumer.highwater(tp)
            if high is not None:
                watermarks[tp] = high
    return {tp: max(listed[tp], watermarks.get(tp, 0)) for tp in partitions}


def consumer_lag(
    kafka: KafkaSettings, topic: str | None = None, group: str | None = None, timeout_s: float = 3.0
) -> list[PartitionLag]:
    """Lag of ``group`` (default: the consumer group) on ``topic`` (default: the events topic)."""
    topic = topic or kafka.events_topic
    group = group or kafka.consumer_group
    if not any_reachable(kafka.bootstrap_servers):
        raise LagUnavailable(f"the Kafka broker at {kafka.bootstrap_servers} is not reachable")
    timeout_ms = int(timeout_s * 1000)
    try:
        consumer = KafkaConsumer(
            **kafka.client_options(),
            group_id=group,
            enable_auto_commit=False,
            client_id="kdrec-app-lag",
            request_timeout_ms=max(timeout_ms, 1000) + 500,
            fetch_max_wait_ms=50,
        )
    except KafkaError as exc:
        raise LagUnavailable(f"cannot connect to Kafka at {kafka.bootstrap_servers}: {exc}") from None
    try:
        ids = consumer.partitions_for_topic(topic)
        if not ids:
            raise LagUnavailable(f"topic {topic} does not exist yet on {kafka.bootstrap_servers}")
        partitions = [TopicPartition(topic, p) for p in sorted(ids)]
        committed = {tp: consumer.committed(tp) for tp in partitions}
        begin = consumer.beginning_offsets(partitions)
        ends = _end_offsets(consumer, partitions, timeout_s)
    except KafkaError as exc:
        raise LagUnavailable(f"Kafka at {kafka.bootstrap_servers} did not answer: {exc}") from None
    finally:
        consumer.close(autocommit=False)
    rows = []
    for tp in partitions:
        done = committed[tp] if committed[tp] is not None else begin[tp]
        rows.append(PartitionLag(tp.partition, committed[tp], ends[tp], max(0, ends[tp] - done)))
    return rows
