"""Adding an item from the app: publish its record to the items topic, then wait for the consumer.

The app does not write SQL: the record goes to ``KafkaSettings.items_topic`` like any
producer's (``stream.items.publish_items``). It carries no item id, only a fresh source id
(``app-`` and a random hex), so the consumer's item feed numbers it (``store.catalogue.numbered``):
two app sessions adding items at once get two items, and a redelivered record still one. The feed
stores it and serves it from its text; here the catalogue is polled until the source id is there.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from kafka.errors import KafkaError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.settings import KafkaSettings
from store.models import CatalogItem
from stream.items import publish_items
from stream.net import any_reachable
from stream.producer import PublishError


class ItemError(RuntimeError):
    """The item could not be published; the message says why."""


@dataclass(frozen=True)
class Published:
    source_id: str
    item_id: int | None
    """The id the item feed gave it; None if it was not stored within the wait."""
    waited_s: float

    @property
    def stored(self) -> bool:
        """Whether the consumer stored it within the wait."""
        return self.item_id is not None


def parse_fields(text: str) -> dict[str, str]:
    """``name: value`` lines -> further text fields (names lower-cased, spaces as ``_``)."""
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        key = name.strip().lower().replace(" ", "_")
        if not sep or not key:
            raise ItemError(f"line {number} of the fields is not `name: value`: {line.strip()!r}")
        if key in ("item_id", "title", "year", "genres", "source_id"):
            raise ItemError(f"line {number}: {key!r} is not a free text field")
        fields[key] = value.strip()
    return fields


def publish_item(
    kafka: KafkaSettings, sessions: sessionmaker[Session], title: str, fields: dict[str, str], timeout_s: float = 10.0
) -> Published:
    """Publish a new item for the item feed to number, and wait until the consumer has stored it."""
    if not title.strip():
        raise ItemError("An item needs a title.")
    if not any_reachable(kafka.bootstrap_servers):
        raise ItemError(
            f"The Kafka broker at {kafka.bootstrap_servers} is not reachable, so the item was not sent. "
            "Start the live system with `kdrec demo` (or `kdrec broker`)."
        )
    started = time.monotonic()
    source_id = f"app-{uuid.uuid4().hex[:16]}"
    try:
        publish_items(kafka, [{"source_id": source_id, "title": title.strip(), **fields}], timeout_s=timeout_s)
    except (KafkaError, PublishError, ValueError) as exc:
        raise ItemError(f"The item was not published: {exc}") from None
    while time.monotonic() - started < timeout_s:
        with sessions() as session:
            item_id = session.scalar(select(CatalogItem.item_id).where(CatalogItem.source_id == source_id))
        if item_id is not None:
            return Published(source_id, int(item_id), time.monotonic() - started)
        time.sleep(0.1)
    return Published(source_id, None, time.monotonic() - started)
