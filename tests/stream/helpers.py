"""Reading a whole topic back (no consumer group, so no join wait)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from core.settings import KafkaSettings


def read_topic(kafka: KafkaSettings, topic: str, expected: int, timeout_s: float = 20.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, once ``expected`` have arrived (or the timeout)."""
    consumer = KafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        # one more short poll: nothing beyond `expected` may be there
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()
