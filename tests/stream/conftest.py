"""A real Kafka-protocol broker for the stream tests (the embedded Tansu, over TCP).

``kafka_broker`` (session): the broker started through ``stream.broker`` on a free loopback port.
``kafka`` (per test): ``KafkaSettings`` for that broker with fresh topic names, topics created.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.settings import KafkaSettings
from stream.broker import EmbeddedBroker, free_port
from stream.topics import ensure_topics


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(KafkaSettings(), port=free_port(), create_topics=False) as broker:
        yield broker


@pytest.fixture
def kafka(kafka_broker: EmbeddedBroker) -> KafkaSettings:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = kafka_broker.settings.model_copy(
        update={
            "events_topic": f"{prefix}.events",
            "dlq_topic": f"{prefix}.events.dlq",
            "recommendations_topic": f"{prefix}.recommendations",
            "control_topic": f"{prefix}.control",
            "items_topic": f"{prefix}.items",
            "items_dlq_topic": f"{prefix}.items.dlq",
            "consumer_group": f"{prefix}-group",
        }
    )
    ensure_topics(settings)
    return settings
