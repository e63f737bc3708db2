"""One catalogue item at a time: the idempotent write behind the live item feed.

``store.load.upsert_items`` writes a whole catalogue at once; items announced on the stream
arrive one by one and may be redelivered, so ``upsert_item`` says what it did (``inserted``,
``updated`` or ``unchanged``) and the same record twice changes nothing. Item ids stay dense
(``core.data.Dataset`` requires 1..n, and so do the models and the FAISS index): an unknown id
must be the next free one, else ``ItemIdGap``. A record may instead name only its
``source_id`` (``UNNUMBERED``): ``numbered`` then gives it the id of the stored item with that
source id, or the next free one, so writers that cannot know the next id (two app sessions adding
items at once) leave the numbering to the one consumer of the items topic. Items with ids above
what a model version learnt are the ones it can serve only from their text (``items_after``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core.data.dataset import Item
from store.models import CatalogItem

Outcome = Literal["inserted", "updated", "unchanged"]
TEXT_COLUMNS = ("title", "year", "genres", "fields")
"""What an item record sets; ``source_id`` is kept unless the record names one."""


UNNUMBERED = 0
"""The ``item_id`` of an item whose record names only its ``source_id``, until ``numbered``."""


class ItemIdGap(ValueError):
    """An unknown item id that is not the next free one (ids must stay dense)."""

    def __init__(self, item_id: int, next_id: int) -> None:
        super().__init__(f"item_id {item_id} is not in the catalogue and is not the next free id {next_id}")
        self.item_id = item_id
        self.next_id = next_id


def item_row(item: Item) -> dict[str, Any]:
    """The ``items`` row of ``item``, as ``store.load.upsert_items`` writes it."""
    return {
        "item_id": item.item_id,
        "title": item.title[:512],
        "year": item.year,
        "genres": "|".join(item.genres),
        "source_id": item.source_id,
        "fields": [list(pair) for pair in item.fields] or None,
    }


def next_item_id(session: Session) -> int:
    """The id a new item must take: the largest stored id + 1 (1 for an empty catalogue)."""
    return int(session.scalar(select(func.max(CatalogItem.item_id))) or 0) + 1


def numbered(session: Session, item: Item) -> Item:
    """``item`` with its catalogue id: as given, or for an ``UNNUMBERED`` one, the id of the
    stored item with its ``source_id`` (the lowest, should several share it), else the next free
    id. A redelivered record therefore finds the item its first delivery inserted."""
    if item.item_id != UNNUMBERED:
        return item
    if item.source_id is None:
        raise ValueError("an item without an item_id needs a source_id")
    stored = session.scalar(select(func.min(CatalogItem.item_id)).where(CatalogItem.source_id == item.source_id))
    return replace(item, item_id=int(stored) if stored is not None else next_item_id(session))


def upsert_item(session: Session, item: Item) -> Outcome:
    """Insert ``item`` or update its text; "unchanged" when the stored row already says the same.

    Raises ``ItemIdGap`` before writing anything, so the caller's transaction stays usable.
    """
    row = item_row(item)
    stored = session.execute(
        select(*(getattr(CatalogItem, name) for name in (*TEXT_COLUMNS, "source_id"))).where(
            CatalogItem.item_id == item.item_id
        )
    ).one_or_none()
    if stored is None:
        next_id = next_item_id(session)
        if item.item_id != next_id:
            raise ItemIdGap(item.item_id, next_id)
        session.execute(insert(CatalogItem).values(**row))
        return "inserted"
    changes = {name: row[name] for name in TEXT_COLUMNS if _differs(getattr(stored, name), row[name])}
    if row["source_id"] is not None and row["source_id"] != stored.source_id:
        changes["source_id"] = row["source_id"]
    if not changes:
        return "unchanged"
    session.execute(update(CatalogItem).where(CatalogItem.item_id == item.item_id).values(**changes))
    return "updated"


def _differs(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, list | tuple) or isinstance(wanted, list | tuple):
        return [list(pair) for pair in stored or ()] != [list(pair) for pair in wanted or ()]
    return bool(stored != wanted)


def items_after(session: Session, known: int) -> list[Item]:
    """Catalogue items with ids above ``known``, in id order: for a model version that learnt
    items 1..known, the ones it can serve only from their text."""
    rows = session.scalars(select(CatalogItem).where(CatalogItem.item_id > known).order_by(CatalogItem.item_id))
    return [as_item(row) for row in rows]


def as_item(row: CatalogItem) -> Item:
    """A stored row as a core ``Item`` (as ``store.load.dataset_from_store`` reads it)."""
    return Item(
        row.item_id,
        row.title,
        row.year,
        tuple(g for g in row.genres.split("|") if g),
        row.source_id,
        tuple((name, value) for name, value in row.fields or ()),
    )
