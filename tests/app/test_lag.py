"""Consumer lag read from a real Kafka-protocol broker (the embedded one, over TCP)."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from app.lag import LagUnavailable, consumer_lag
from core.settings import KafkaSettings
from stream.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.kafka


def test_lag_is_end_minus_committed_per_partition() -> None:
    with EmbeddedBroker(KafkaSettings(), port=free_port()) as broker:
        kafka = broker.settings
        producer = KafkaProducer(**kafka.client_options(), linger_ms=50)
        for _ in range(10):  # one batch on partition 0: the case ListOffsets gets wrong on Tansu
            producer.send(kafka.events_topic, b"x", partition=0)
        producer.flush()
        for _ in range(3):
            producer.send(kafka.events_topic, b"y", partition=1)
            producer.flush()
        producer.close()
        committer = KafkaConsumer(**kafka.client_options(), group_id=kafka.consumer_group, enable_auto_commit=False)
        partition0 = TopicPartition(kafka.events_topic, 0)
        committer.assign([partition0])
        committer.commit({partition0: OffsetAndMetadata(4, "", -1)})
        committer.close()
        rows = {row.partition: row for row in consumer_lag(kafka)}
    assert (rows[0].committed, rows[0].end, rows[0].lag) == (4, 10, 6)
    assert (rows[1].committed, rows[1].end, rows[1].lag) == (None, 3, 3)
    assert sum(row.lag for row in rows.values()) == 9
    with pytest.raises(LagUnavailable, match="not reachable"):
        consumer_lag(kafka)  # the broker is gone now
