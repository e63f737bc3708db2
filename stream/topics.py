"""kdrec's Kafka topics and their idempotent creation, with kafka-python's admin client only.

Works the same against Apache Kafka and the embedded broker (``stream.broker``). Topics are
created with replication factor -1 ("the broker's default", KIP-464), so a real cluster
applies its own ``default.replication.factor``.

Partitions: the events, dead-letter and recommendations topics get
``KafkaSettings.partitions`` (all three are keyed by user id); the control topic gets one
partition so that control messages (e.g. "model version N promoted") are totally ordered, and
so do the items topic and its dead-letter topic: item ids are dense, so a new item's record
must come after the one of the item before it (``stream.items``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from core.settings import KafkaSettings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
CONTROL_PARTITIONS = 1
ITEMS_PARTITIONS = 1


@dataclass(frozen=True)
class TopicSpec:
    role: str
    name: str
    partitions: int


def topic_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    """The six kdrec topics with their wanted partition counts."""
    return [
        TopicSpec("events", kafka.events_topic, kafka.partitions),
        TopicSpec("dlq", kafka.dlq_topic, kafka.partitions),
        TopicSpec("recommendations", kafka.recommendations_topic, kafka.partitions),
        TopicSpec("control", kafka.control_topic, CONTROL_PARTITIONS),
        TopicSpec("items", kafka.items_topic, ITEMS_PARTITIONS),
        TopicSpec("items_dlq", kafka.items_dlq_topic, ITEMS_PARTITIONS),
    ]


def admin_client(kafka: KafkaSettings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(**kafka.client_options(), client_id="kdrec-admin", request_timeout_ms=timeout_ms)


def ensure_topics(kafka: KafkaSettings, timeout_ms: int = 10_000) -> dict[str, int]:
    """Create any missing kdrec topic; return ``{topic name: partition count}`` of all six.

    Idempotent: existing topics are left as they are (a warning is logged when one has fewer
    partitions than configured, since repartitioning would break per-user ordering).
    """
    specs = topic_specs(kafka)
    admin = admin_client(kafka, timeout_ms)
    try:
        response = admin.create_topics(
            [NewTopic(spec.name, spec.partitions, -1) for spec in specs], timeout_ms=timeout_ms, raise_errors=False
        )
        for result in response.get("topics", []):
            code = result.get("error_code", 0)
            if code == 0:
                log.info("created topic %s (%s partitions)", result["name"], result.get("num_partitions"))
            elif code != TOPIC_ALREADY_EXISTS:
                raise KafkaError(
                    f"cannot create topic {result['name']}: error {code} {result.get('error_message') or ''}".rstrip()
                )
        counts = partition_counts(admin, [spec.name for spec in specs])
    finally:
        admin.close()
    for spec in specs:
        have = counts.get(spec.name, 0)
        if have < spec.partitions:
            log.warning("topic %s has %d partitions, configured %d (left unchanged)", spec.name, have, spec.partitions)
    return counts


def partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partition count of each existing topic (missing topics are left out)."""
    described = admin.describe_topics(topics)
    return {topic["name"]: len(topic["partitions"]) for topic in described if topic.get("error_code", 0) == 0}
