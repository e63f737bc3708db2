"""A click from the app: publish it to Kafka, then wait for the consumer's recommendations.

The click is a real event on the events topic (``stream.producer.publish_click``); the app
does not write SQL. The consumer group picks it up, stores it and writes the user's fresh
top-K to the ``recommendations`` table, which is polled here for a row newer than the ones
that existed before the click and triggered by an event no older than the click (the click
itself, or a later event of the same user consumed in the same batch).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka.errors import KafkaError
from sqlalchemy.orm import Session, sessionmaker

from app import queries
from core.settings import KafkaSettings
from store.models import Recommendation
from stream.events import ClickEvent
from stream.net import any_reachable
from stream.producer import PublishError, publish_click


class ClickError(RuntimeError):
    """The click could not be published; the message says why."""


@dataclass(frozen=True)
class ClickOutcome:
    event: ClickEvent
    recommendation: Recommendation | None
    """The consumer's answer, or None if none arrived within the timeout."""
    waited_s: float

    @property
    def latency_ms(self) -> int | None:
        """From the click's time to the consumer writing the recommendations."""
        if self.recommendation is None:
            return None
        return int(self.recommendation.created_at.timestamp() * 1000) - self.event.ts


def publish(kafka: KafkaSettings, user_id: int, item_id: int) -> ClickEvent:
    if not any_reachable(kafka.bootstrap_servers):
        raise ClickError(
            f"The Kafka broker at {kafka.bootstrap_servers} is not reachable, so the click was not "
            "sent. Start the live system with `kdrec demo` (or `kdrec broker`)."
        )
    try:
        return publish_click(kafka, user_id, item_id, timeout_s=10.0)
    except (KafkaError, PublishError) as exc:
        raise ClickError(f"Kafka at {kafka.bootstrap_servers} did not accept the click: {exc}") from None


def wait_for_recommendation(
    sessions: sessionmaker[Session],
    user_id: int,
    after_id: int,
    min_event_ts: int,
    timeout_s: float,
    interval_s: float = 0.1,
) -> Recommendation | None:
    deadline = time.monotonic() + timeout_s
    while True:
        with sessions() as session:
            found = queries.recommendation_after(session, user_id, after_id, min_event_ts)
            if found is not None:
                session.expunge(found)
                return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def click_and_wait(
    kafka: KafkaSettings, sessions: sessionmaker[Session], user_id: int, item_id: int, timeout_s: float = 15.0
) -> ClickOutcome:
    """Publish the click and wait (at most ``timeout_s``) for the recommendations it triggers."""
    with sessions() as session:
        before = queries.max_recommendation_id(session, user_id)
    started = time.monotonic()
    event = publish(kafka, user_id, item_id)
    found = wait_for_recommendation(sessions, user_id, before, event.ts, timeout_s)
    return ClickOutcome(event, found, time.monotonic() - started)
