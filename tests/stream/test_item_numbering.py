"""Items that name only their source id: the item feed numbers them, so writers cannot collide.

Real parts: the embedded broker over TCP, SQLite and PostgreSQL, the stream consumer's item feed,
and the app's publish path (``app.items.publish_item``), which sends such records.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from app.items import publish_item
from core.data.dataset import Item
from core.settings import KafkaSettings
from store.models import CatalogItem
from stream.events import Rejection
from stream.items import decode_item, publish_items
from tests.stream.consumer_helpers import (
    NUM_ITEMS,
    add_catalogue,
    consumer_thread,
    fast_group,
    publish_student,
    wait_until,
)
from tests.stream.helpers import read_topic

LIMIT = 4096


def test_a_record_without_an_item_id_needs_a_source_id_and_a_matching_key() -> None:
    unnumbered = decode_item(b'{"source_id": "B00X", "title": "Kite"}', b"B00X", LIMIT)
    assert unnumbered == Item(0, "Kite", source_id="B00X")
    for value, key, code in (
        (b'{"title": "Kite"}', None, "missing_field"),
        (b'{"source_id": "", "title": "Kite"}', None, "invalid_field"),
        (b'{"source_id": "B00X", "title": "Kite"}', b"1", "key_mismatch"),
    ):
        outcome = decode_item(value, key, LIMIT)
        assert isinstance(outcome, Rejection) and outcome.code == code, (value, outcome)


def stored(sessions) -> dict[str, tuple[int, str]]:
    """source id -> (item id, title) of the items with a source id."""
    with sessions() as session:
        rows = session.execute(select(CatalogItem.source_id, CatalogItem.item_id, CatalogItem.title))
        return {source: (item_id, title) for source, item_id, title in rows if source is not None}


@pytest.fixture
def live_kafka(kafka: KafkaSettings, sessions, tmp_path: Path) -> KafkaSettings:
    """The broker's settings (fast group joins) once SQL holds a catalogue and a served student."""
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    return fast_group(kafka)


@pytest.mark.kafka
def test_the_feed_numbers_them_densely_and_a_later_record_with_the_same_source_id_updates_it(
    live_kafka: KafkaSettings, database_url: str, sessions
) -> None:
    kafka = live_kafka
    kite = {"source_id": "B00KITE", "title": "Kite"}
    with consumer_thread(kafka, database_url) as consumer:
        assert consumer.item_feed is not None
        publish_items(kafka, [kite, {"source_id": "B00YOYO", "title": "Yo-yo"}, {**kite, "title": "Kite, red"}])
        wait_until(lambda: sum(consumer.item_feed.counts.values()) == 3, 60, "three records applied")
        assert dict(consumer.item_feed.counts) == {"inserted": 2, "updated": 1}
    assert stored(sessions) == {"B00KITE": (NUM_ITEMS + 1, "Kite, red"), "B00YOYO": (NUM_ITEMS + 2, "Yo-yo")}
    sent = read_topic(kafka, kafka.items_topic, 3)
    assert [record.key for record in sent] == [b"B00KITE", b"B00YOYO", b"B00KITE"]


@pytest.mark.kafka
def test_app_sessions_adding_items_at_once_get_an_item_each(
    live_kafka: KafkaSettings, database_url: str, sessions
) -> None:
    titles = [f"Wooden train {n}" for n in range(4)]
    with consumer_thread(live_kafka, database_url), ThreadPoolExecutor(len(titles)) as pool:
        published = list(
            pool.map(lambda t: publish_item(live_kafka, sessions, t, {"brand": "Brio"}, timeout_s=60), titles)
        )
    assert all(p.stored for p in published), published
    assert sorted(p.item_id for p in published) == list(range(NUM_ITEMS + 1, NUM_ITEMS + 5))  # type: ignore[type-var]
    assert {p.source_id: (p.item_id, title) for p, title in zip(published, titles, strict=True)} == stored(sessions)
