"""Publishing click events: a small API over kafka-python's ``KafkaProducer``.

Events are JSON (``ClickEvent.to_json``) keyed by the user id, so kafka-python's murmur2
partitioner (the same as the Java client's) keeps each user's events in one partition, in
order. The producer is idempotent with ``acks="all"`` (kafka-python 3's defaults, stated
explicitly), so retries do not duplicate or reorder a partition's records.

Sends are asynchronous; failures are collected and raised by the next ``flush()``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from core.settings import KafkaSettings
from stream.events import ClickEvent, parse_ts

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """One or more events were not acknowledged by the broker."""


def new_event_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def producer_options(kafka: KafkaSettings, **overrides: object) -> dict[str, object]:
    """kafka-python producer options: connection/security from settings, then kdrec's defaults."""
    return {
        **kafka.client_options(),
        "client_id": "kdrec-producer",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": kafka.linger_ms,
        **overrides,
    }


class ClickProducer:
    """Holds one ``KafkaProducer`` for the events topic; a context manager (flush + close)."""

    def __init__(self, kafka: KafkaSettings, *, topic: str | None = None, **overrides: object) -> None:
        self.topic = topic or kafka.events_topic
        self.producer = KafkaProducer(**producer_options(kafka, **overrides))
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, event: ClickEvent) -> FutureRecordMetadata:
        """Queue one event (asynchronous); the future resolves to its partition and offset."""
        future = self.producer.send(self.topic, key=event.key(), value=event.to_json())
        future.add_errback(self._failed)
        self.sent += 1
        return future

    def publish_click(
        self,
        user_id: int,
        item_id: int,
        *,
        ts: int | str | None = None,
        type: str = "click",
        event_id: str | None = None,
    ) -> ClickEvent:
        """Validate and queue one click; a fresh uuid4 event id and the current time by default."""
        event = ClickEvent(
            event_id=event_id or new_event_id(),
            user_id=user_id,
            item_id=item_id,
            ts=now_ms() if ts is None else parse_ts(ts),
            type=type,
        )
        self.send(event)
        return event

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every queued event is acknowledged; raise if any failed since the last flush."""
        self.producer.flush(timeout=timeout_s)
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise PublishError(f"{len(errors)} event(s) not delivered; first error: {errors[0]!r}")

    def close(self, timeout_s: float | None = None) -> None:
        try:
            self.flush(timeout_s)
        finally:
            self.producer.close(timeout=timeout_s)

    def __enter__(self) -> ClickProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # don't hide the original error behind a flush failure
            self.producer.close(timeout=5)


def publish_click(
    kafka: KafkaSettings,
    user_id: int,
    item_id: int,
    *,
    ts: int | str | None = None,
    type: str = "click",
    event_id: str | None = None,
    timeout_s: float = 30.0,
) -> ClickEvent:
    """Publish one click and wait for the broker's acknowledgement (opens a short-lived producer)."""
    with ClickProducer(kafka) as producer:
        event = producer.publish_click(user_id, item_id, ts=ts, type=type, event_id=event_id)
        producer.flush(timeout_s)
    return event
