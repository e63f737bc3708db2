"""The stream consumer's Kafka side: one group member on the events topic and one producer for
the dead-letter and recommendations topics, built, used and closed together.

Offsets are committed explicitly and only by ``commit`` (auto-commit is off). Commits are
asynchronous on the hot path (the request goes out after the batch's sends were acknowledged;
if it is lost the batch is redelivered, which is harmless) and synchronous on close.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata

from core.settings import KafkaSettings
from stream.dlq import DeadLetters, Source
from stream.events import Rejection
from stream.net import any_reachable
from stream.producer import producer_options
from stream.recommendations import RecommendationMessage
from stream.topics import ensure_topics

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list]
Offsets = dict[TopicPartition, OffsetAndMetadata]


class BrokerUnavailable(RuntimeError):
    """The broker does not accept connections, or did not acknowledge what was sent."""


class Backoff:
    """Exponential delays ``initial * 2^n`` capped at ``maximum``; ``reset()`` after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2 ** self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def next_offsets(polled: Polled) -> Offsets:
    """The offsets to commit once every record of ``polled`` is applied."""
    return {partition: OffsetAndMetadata(batch[-1].offset + 1, "", -1) for partition, batch in polled.items()}


class Clients:
    """The consumer group member and the output producer (see the module docstring)."""

    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        self.kafka = kafka
        servers = kafka.bootstrap_servers
        if not any_reachable(servers):
            raise BrokerUnavailable(f"no broker accepts connections at {servers}")
        ensure_topics(kafka)  # idempotent; an in-memory broker loses its topics when it restarts
        self.consumer = KafkaConsumer(
            kafka.events_topic, **kafka.client_options(), client_id=client_id, group_id=kafka.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=kafka.max_poll_records,
            session_timeout_ms=kafka.session_timeout_ms, heartbeat_interval_ms=kafka.heartbeat_interval_ms)
        try:
            # A batch's sends are queued, then flushed at once (flush does not wait for linger),
            # so a long linger costs no latency and saves a sender wake-up per record.
            self.producer = KafkaProducer(**producer_options(kafka, client_id=client_id, linger_ms=1000))
        except BaseException:
            self.consumer.close(autocommit=False)
            raise
        self.dead_letters = DeadLetters(self.producer, kafka.dlq_topic)
        self.uncommitted: Offsets = {}

    def reachable(self) -> bool:
        return any_reachable(self.kafka.bootstrap_servers)

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def poll(self, timeout_ms: int) -> Polled:
        return self.consumer.poll(timeout_ms=timeout_ms)

    def publish(self, rejected: Sequence[tuple[object, Rejection]], messages: Sequence[RecommendationMessage],
                timeout_s: float) -> None:
        """Send dead letters and recommendations and wait until the broker acknowledged all."""
        futures = []
        for record, rejection in rejected:
            futures.append(self.dead_letters.send(
                record.value, rejection, key=record.key,  # type: ignore[attr-defined]
                source=Source(record.topic, record.partition, record.offset),  # type: ignore[attr-defined]
                headers=list(record.headers or ())))  # type: ignore[attr-defined]
        topic = self.kafka.recommendations_topic
        for message in messages:
            futures.append(self.producer.send(topic, key=message.key(), value=message.to_json()))
        if not futures:
            return
        self.producer.flush(timeout=timeout_s)
        failed = [future.exception for future in futures if future.failed()]
        if failed:
            raise BrokerUnavailable(f"{len(failed)} of {len(futures)} sends failed: {failed[0]!r}")

    def commit(self, offsets: Offsets) -> None:
        """Commit asynchronously (a lost commit only means a redelivery)."""
        self.uncommitted.update(offsets)
        self.consumer.commit_async(offsets, callback=self._committed)

    def _committed(self, offsets: Offsets, response: object) -> None:
        if isinstance(response, Exception):
            log.warning("offset commit failed (%s); those records will be redelivered", response)
            return
        for partition, offset in offsets.items():
            if self.uncommitted.get(partition) == offset:
                del self.uncommitted[partition]

    def seek_back(self, polled: Polled) -> None:
        """Fetch the records of ``polled`` again on the next poll (partitions still owned)."""
        assigned = self.consumer.assignment()
        for partition, batch in polled.items():
            if partition in assigned:
                self.consumer.seek(partition, batch[0].offset)

    def close(self, final_commit: bool) -> None:
        """Commit what is still in flight (synchronously, when asked and possible), then close."""
        if final_commit and self.uncommitted:
            try:
                self.consumer.commit(dict(self.uncommitted), timeout_ms=5000)
            except (CommitFailedError, RebalanceInProgressError, KafkaError) as exc:
                log.warning("final offset commit failed (%s); the last batch may be redelivered", exc)
        for name, close in (("consumer", lambda: self.consumer.close(autocommit=False, timeout_ms=2000)),
                            ("producer", lambda: self.producer.close(timeout=2))):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - closing a client of a dead broker may fail
                log.debug("closing the %s failed: %s", name, exc)
