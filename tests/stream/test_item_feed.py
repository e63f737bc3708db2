"""New items on the items topic: SQL, the live index, recommendations and clicks, end to end.

Real parts: the embedded broker over TCP, SQLite and PostgreSQL, a tiny real student with a
text map saved in its artifact folder, the real all-MiniLM-L6-v2 reading the new items' text,
FAISS. The text map is chosen so that the new item's text lands on a large multiple of one
user's session vector: that user must then be recommended the new item first.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import kafka.codec as kafka_codec
import pytest
import torch
from confluent_kafka import Producer
from kafka import KafkaProducer
from sqlalchemy import func, select

from core.data.dataset import Item
from core.distill.text_map import TextMap
from core.index import ItemIndex, SessionRecommender
from core.models.student import Student
from core.settings import KafkaSettings, StudentConfig
from core.text import checkpoint_identity
from core.text.checkpoint import default_checkpoint
from core.text.live import TextEncoder
from store.catalogue import items_after
from store.models import CatalogItem
from store.recommendations import latest_recommendations
from store.sequences import get_sequence
from store.versions import LoadedVersion, new_artifact_folder, publish
from stream.consumer import StreamConsumer
from stream.dlq import DeadLetter
from stream.item_feed import ItemFeed
from stream.items import item_value, publish_items
from stream.options import ConsumerOptions
from stream.producer import ClickProducer
from tests.stream.consumer_helpers import (
    FAST,
    NUM_ITEMS,
    SEQUENCE_LENGTH,
    SERVE,
    add_catalogue,
    consumer_thread,
    event_count,
    fast_group,
    publish_student,
    wait_until,
)
from tests.stream.helpers import read_topic

pytestmark = pytest.mark.kafka

NEW = {"item_id": NUM_ITEMS + 1, "title": "Heat", "year": 1995, "genres": ["Action", "Crime"], "studio": "Warner"}
NEW_ITEM = Item(NUM_ITEMS + 1, "Heat", 1995, ("Action", "Crime"), None, (("studio", "Warner"),))
HISTORY = [3, 9, 12]
"""The session of the user the new item is made for."""


@cache
def new_item_encoding() -> torch.Tensor:
    return TextEncoder(None).encode([NEW_ITEM.text()])[0]


def student_with_text_map(sessions, root: Path, seed: int, promote: bool = True) -> int:
    """A tiny student published with a text map taking ``NEW``'s text to 10x the best score any
    learnt item can reach for ``HISTORY``'s session vector; its version id."""
    torch.manual_seed(seed)
    student = Student(
        StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=SEQUENCE_LENGTH), num_items=NUM_ITEMS
    ).eval()
    table = student.item_embeddings().detach()
    session = SessionRecommender(student, ItemIndex.build(table), max_len=student.history_len)
    query = torch.from_numpy(session.vectors([HISTORY])[0])
    target = query * (10 * float(table[1:].norm(dim=1).max()) / float(query.norm()))
    encoding = new_item_encoding()
    weight = torch.outer(encoding, target) / float(encoding @ encoding)  # encoding @ weight == target
    folder = new_artifact_folder(root, "student", f"t{seed}")
    lm = checkpoint_identity(default_checkpoint())
    TextMap(weight, torch.zeros(16), ridge=1.0, min_count=1, lm=lm).save(folder)
    with sessions.begin() as db:
        return publish(db, student, folder, metrics={}, config={"seed": seed}, serve=SERVE, promote=promote).id


def catalogue_size(sessions) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CatalogItem)) or 0)


def served(consumer: StreamConsumer) -> int:
    loaded = consumer.active.loaded
    return loaded.recommender.index.num_items if loaded is not None else 0


def live(consumer: StreamConsumer) -> LoadedVersion:
    loaded = consumer.active.loaded
    assert loaded is not None
    return loaded


def feed(consumer: StreamConsumer) -> ItemFeed:
    assert consumer.item_feed is not None
    return consumer.item_feed


def send_raw(kafka: KafkaSettings, values: Sequence[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(**kafka.client_options())
    for key, value in values:
        producer.send(kafka.items_topic, key=key, value=value)
    producer.flush()
    producer.close()


def test_a_new_item_is_recommended_from_its_text_and_clicks_on_it_are_accepted(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    version = student_with_text_map(sessions, tmp_path, seed=1)
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        wait_until(lambda: served(consumer) == NUM_ITEMS, 30, "the student to load")
        assert publish_items(kafka, [NEW]) == 1
        wait_until(lambda: served(consumer) == NUM_ITEMS + 1, 60, "the new item in the live index")
        loaded = live(consumer)
        assert loaded.version_id == version and loaded.text_items == {NUM_ITEMS + 1}
        assert loaded.model.num_items == NUM_ITEMS  # nothing learnt: served from its text
        with sessions() as session:
            assert items_after(session, NUM_ITEMS) == [NEW_ITEM]
        with ClickProducer(kafka) as producer:
            clicks = [producer.publish_click(7, item, ts=1_800_000_000_000 + i) for i, item in enumerate(HISTORY)]
            clicked = producer.publish_click(8, NUM_ITEMS + 1, ts=1_800_000_000_100)
        wait_until(lambda: event_count(sessions) == 4, 60, "the four clicks in SQL")

        def served_to_7() -> bool:
            with sessions() as session:
                recs = latest_recommendations(session, 7)
            return bool(recs) and recs[0].event_id == clicks[-1].event_id

        wait_until(served_to_7, 30, "user 7's recommendations after the last click")
    with sessions() as session:
        rec = latest_recommendations(session, 7)[0]
        assert rec.items[0] == NUM_ITEMS + 1, rec.items  # the new item, first
        assert rec.model_version_id == version and len(rec.items) == SERVE.top_k
        assert not set(rec.items) & set(HISTORY)
        # the click on the new item was stored, not dead-lettered as unknown
        assert get_sequence(session, 8)[0] == [NUM_ITEMS + 1]
        other = latest_recommendations(session, 8)[0]
        assert other.event_id == clicked.event_id and NUM_ITEMS + 1 not in other.items  # seen
    assert consumer.metrics.rejected == 0 and read_topic(kafka, kafka.dlq_topic, 0, timeout_s=1) == []
    assert feed(consumer).counts["inserted"] == 1


def test_malformed_item_records_are_dead_lettered_and_the_feed_goes_on(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)  # no text map: items are stored, not served
    bad: list[tuple[bytes | None, bytes | None]] = [
        (None, b"not json {"),
        (b"61", json.dumps({"item_id": NUM_ITEMS + 1}).encode()),
        (None, item_value({"item_id": NUM_ITEMS + 9, "title": "Too far ahead"})),
        (b"5", item_value({"item_id": NUM_ITEMS + 1, "title": "Wrong key"})),
        (None, item_value({"item_id": NUM_ITEMS + 1, "title": "Priced", "price": 9.5})),
    ]
    good: list[tuple[bytes | None, bytes | None]] = [
        (None, item_value({"item_id": NUM_ITEMS + 1, "title": "Ronin", "year": 1998}))
    ]
    with (
        caplog.at_level(logging.INFO, logger="stream.text_serving"),
        consumer_thread(fast_group(kafka), database_url) as consumer,
    ):
        send_raw(kafka, bad + good)
        wait_until(lambda: catalogue_size(sessions) == NUM_ITEMS + 1, 60, "the valid record in SQL")
        wait_until(lambda: feed(consumer).counts["rejected"] == len(bad), 30, "every rejection counted")
        with ClickProducer(kafka) as producer:
            producer.publish_click(4, NUM_ITEMS + 1)
        wait_until(lambda: event_count(sessions) == 1, 60, "the click on the new item in SQL")
        assert served(consumer) == NUM_ITEMS  # no text map: not recommended until a refit
    assert "has no text map" in caplog.text
    letters = [DeadLetter.from_record(r) for r in read_topic(kafka, kafka.items_dlq_topic, len(bad))]
    assert [(letter.key, letter.value) for letter in letters] == bad  # original bytes, in order
    assert [letter.code for letter in letters] == [
        "invalid_json",
        "missing_field",
        "item_id_gap",
        "key_mismatch",
        "wrong_type",
    ]
    assert f"next free id {NUM_ITEMS + 1}" in letters[2].reason
    for offset, letter in enumerate(letters):
        assert letter.source is not None and (letter.source.topic, letter.source.offset) == (kafka.items_topic, offset)
        assert letter.reason.startswith(letter.code + ": ")
    with sessions() as session:
        assert items_after(session, NUM_ITEMS) == [Item(NUM_ITEMS + 1, "Ronin", 1998)]


def test_a_redelivered_item_changes_nothing_and_a_restart_serves_it_again(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    student_with_text_map(sessions, tmp_path, seed=1)
    kafka = fast_group(kafka)
    with consumer_thread(kafka, database_url) as consumer:
        publish_items(kafka, [NEW, NEW])  # the same record twice
        wait_until(lambda: sum(feed(consumer).counts.values()) == 2, 60, "both records applied")
        wait_until(lambda: served(consumer) == NUM_ITEMS + 1, 30, "the new item served")
        assert dict(feed(consumer).counts) == {"inserted": 1, "unchanged": 1}
        assert live(consumer).text_items == {NUM_ITEMS + 1}
    assert catalogue_size(sessions) == NUM_ITEMS + 1
    # A fresh group reads the topic from the start: every record redelivered, nothing changes,
    # and the freshly loaded student serves the stored item from its text at start-up.
    again = kafka.model_copy(update={"consumer_group": f"g{uuid.uuid4().hex[:8]}"})
    with consumer_thread(again, database_url) as consumer:
        wait_until(lambda: sum(feed(consumer).counts.values()) == 2, 60, "both records redelivered")
        wait_until(lambda: served(consumer) == NUM_ITEMS + 1, 30, "the stored item served at start-up")
        assert dict(feed(consumer).counts) == {"unchanged": 2}
        assert served(consumer) == live(consumer).recommender.index.index.ntotal == NUM_ITEMS + 1
    assert catalogue_size(sessions) == NUM_ITEMS + 1


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_newly_promoted_version_serves_the_text_only_items_too(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path
) -> None:
    add_catalogue(sessions)
    first = student_with_text_map(sessions, tmp_path, seed=1)
    with consumer_thread(fast_group(kafka), database_url) as consumer:
        publish_items(kafka, [NEW, {"item_id": NUM_ITEMS + 2, "title": "Ronin"}])
        wait_until(lambda: served(consumer) == NUM_ITEMS + 2, 60, "both new items served")
        old = live(consumer)
        second = student_with_text_map(sessions, tmp_path, seed=2)  # promoted: the watcher loads it
        wait_until(lambda: live(consumer).version_id == second, 30, "the new version to load")
        wait_until(lambda: served(consumer) == NUM_ITEMS + 2, 30, "the new version serving the new items")
        fresh = live(consumer)
        assert fresh.text_items == {NUM_ITEMS + 1, NUM_ITEMS + 2} and fresh.model.num_items == NUM_ITEMS
        query = fresh.recommender.vectors([HISTORY])
        assert NUM_ITEMS + 1 in fresh.recommender.index.search(query, 2).ids[0]  # through its own map
    assert old.version_id == first and old.recommender.index.num_items == NUM_ITEMS + 2


def librdkafka_items(kafka: KafkaSettings, values: Sequence[bytes], compression: str) -> None:
    """Item records as a user's service would send them: confluent-kafka, one compressed batch."""
    config = {"bootstrap.servers": kafka.bootstrap_servers, "compression.type": compression, "linger.ms": 50}
    producer = Producer(config)
    for value in values:
        producer.produce(kafka.items_topic, value=value)
    assert producer.flush(30) == 0, "confluent-kafka did not deliver everything within 30 s"


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_an_undecodable_item_batch_is_dead_lettered_and_the_feed_goes_on(
    kafka: KafkaSettings, database_url: str, sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed lacks lz4: the lz4 batch is retried, then skipped as one dead letter naming its
    offsets; the plain item after it on the (single) items partition is stored."""
    add_catalogue(sessions)
    publish_student(sessions, tmp_path, seed=1)
    lost = [item_value({"item_id": NUM_ITEMS + 1 + i, "title": f"Lost {i}"}) for i in range(3)]
    librdkafka_items(kafka, lost, "lz4")
    librdkafka_items(kafka, [item_value({"item_id": NUM_ITEMS + 1, "title": "Ronin"})], "none")
    monkeypatch.setattr(kafka_codec, "has_lz4", lambda: False)
    options = ConsumerOptions(**{**FAST.__dict__, "poison_attempts": 2, "backoff_initial_s": 0.1})
    with consumer_thread(fast_group(kafka), database_url, options) as consumer:
        wait_until(lambda: catalogue_size(sessions) == NUM_ITEMS + 1, 60, "the item after the lz4 batch in SQL")
        assert dict(feed(consumer).counts) == {"skipped_batches": 1, "inserted": 1}
        assert feed(consumer).poison.retries == 1
    (letter,) = [DeadLetter.from_record(r) for r in read_topic(kafka, kafka.items_dlq_topic, 1)]
    assert letter.code == "undecodable_batch" and "lz4" in letter.reason
    assert letter.skipped == (0, 2) and letter.source is not None and letter.source.topic == kafka.items_topic
    assert letter.value  # the raw batch, kept for a replay once the codec is there
    with sessions() as session:
        assert items_after(session, NUM_ITEMS) == [Item(NUM_ITEMS + 1, "Ronin")]
