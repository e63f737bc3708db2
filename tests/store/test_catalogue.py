"""One catalogue item at a time: idempotent upserts, dense ids, and the items a version never learnt."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.data.dataset import Item
from store.catalogue import UNNUMBERED, ItemIdGap, items_after, next_item_id, numbered, upsert_item
from store.load import dataset_from_store, upsert_items
from store.models import CatalogItem
from tests.store.helpers import add_items


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CatalogItem)) or 0)


def test_next_item_id_starts_at_one_and_follows_the_largest(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert next_item_id(session) == 1
    add_items(sessions, 4)
    with sessions() as session:
        assert next_item_id(session) == 5


def test_upsert_says_what_it_did_and_a_redelivery_changes_nothing(sessions: sessionmaker[Session]) -> None:
    add_items(sessions, 3)
    heat = Item(4, "Heat", 1995, ("Action", "Crime"), None, (("brand", "Warner"), ("category", "Movies")))
    with sessions.begin() as session:
        assert upsert_item(session, heat) == "inserted"
        assert upsert_item(session, heat) == "unchanged"  # the same record twice, one transaction
    with sessions.begin() as session:
        assert upsert_item(session, heat) == "unchanged"  # and in the next one
    assert count(sessions) == 4
    renamed = Item(4, "Heat (Director's Cut)", 1995, ("Action", "Crime"), None, heat.fields)
    other_fields = Item(4, renamed.title, 1995, ("Action", "Crime"), None, (("brand", "Warner"),))
    with sessions.begin() as session:
        assert upsert_item(session, renamed) == "updated"
        assert upsert_item(session, other_fields) == "updated"
        assert upsert_item(session, other_fields) == "unchanged"
    with sessions() as session:
        stored = dataset_from_store(session).items[4]
    assert (
        stored == other_fields
        and stored.text() == "Heat (Director's Cut) (1995). Genres: Action, Crime. Brand: Warner."
    )
    assert count(sessions) == 4


def test_a_stored_source_id_is_kept_unless_the_record_names_one(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        upsert_items(session, [Item(1, "Toy Story", 1995, ("Animation",), "tt0114709")])
    with sessions.begin() as session:
        assert upsert_item(session, Item(1, "Toy Story", 1995, ("Animation",))) == "unchanged"
        assert upsert_item(session, Item(1, "Toy Story", 1995, ("Animation",), "m1")) == "updated"
    with sessions() as session:
        assert dataset_from_store(session).items[1].source_id == "m1"


def test_an_unnumbered_item_takes_its_source_ids_item_or_the_next_free_id(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        upsert_items(session, [Item(1, "Toy Story", 1995, ("Animation",), "tt0114709"), Item(2, "Heat")])
    with sessions.begin() as session:
        assert numbered(session, Item(UNNUMBERED, "Toy Story (1995)", source_id="tt0114709")).item_id == 1
        kite = numbered(session, Item(UNNUMBERED, "Kite", source_id="B00KITE"))
        assert kite == Item(3, "Kite", source_id="B00KITE")
        assert upsert_item(session, kite) == "inserted"
        assert numbered(session, Item(UNNUMBERED, "Kite", source_id="B00KITE")) == kite  # a redelivery
        assert numbered(session, Item(2, "Heat")) == Item(2, "Heat")  # a numbered item as it is
        with pytest.raises(ValueError, match="needs a source_id"):
            numbered(session, Item(UNNUMBERED, "Nameless"))


def test_unknown_ids_must_be_the_next_free_one(sessions: sessionmaker[Session]) -> None:
    add_items(sessions, 3)
    with sessions.begin() as session:
        with pytest.raises(ItemIdGap, match="next free id 4") as raised:
            upsert_item(session, Item(6, "Too far"))
        assert (raised.value.item_id, raised.value.next_id) == (6, 4)
        assert isinstance(raised.value, ValueError)
        # nothing was written, and the transaction goes on
        assert upsert_item(session, Item(4, "Next")) == "inserted"
        assert upsert_item(session, Item(5, "After")) == "inserted"
        assert upsert_item(session, Item(6, "Now in order")) == "inserted"
    with sessions() as session:
        assert sorted(dataset_from_store(session).items) == [1, 2, 3, 4, 5, 6]  # still a valid, dense Dataset


def test_items_after_are_the_ones_a_version_never_learnt(sessions: sessionmaker[Session]) -> None:
    add_items(sessions, 3)
    long_title = "x" * 600
    with sessions.begin() as session:
        upsert_item(session, Item(4, "New one", None, (), None, (("brand", "Acme"),)))
        upsert_item(session, Item(5, long_title))
    with sessions() as session:
        after = items_after(session, 3)
        assert [item.item_id for item in after] == [4, 5]
        assert after[0] == Item(4, "New one", None, (), None, (("brand", "Acme"),))
        assert after[1].title == long_title[:512]  # as store.load writes titles
        assert items_after(session, 5) == []
        assert [item.item_id for item in items_after(session, 0)] == [1, 2, 3, 4, 5]
    with sessions.begin() as session:  # a truncated title compares equal to its record: no update
        assert upsert_item(session, Item(5, long_title)) == "unchanged"
