"""Bulk load a core ``Dataset`` into the store, and read the store back as a ``Dataset``.

Loading goes through the same idempotent append as the stream (``append_events``), in
chunks of many thousand events, one transaction per chunk: each event gets the
deterministic id ``{dataset}:{user}:{position}``, so a re-run inserts nothing and changes
no sequence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from core.data.dataset import Dataset, Item
from store import dialect
from store.catalogue import as_item, item_row
from store.events import NewEvent, append_events
from store.models import CatalogItem, Event, ModelVersion, Recommendation, User, UserSequence, table

log = logging.getLogger(__name__)

ITEMS = table(CatalogItem)
DEFAULT_CHUNK = 50_000


@dataclass
class LoadResult:
    dataset: str
    items: int
    users: int
    events: int
    inserted: int
    duplicates: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def event_id(dataset: str, user: int, position: int) -> str:
    return f"{dataset}:{user}:{position}"


def upsert_items(session: Session, items: list[Item], chunk: int = 5_000) -> None:
    """Insert catalogue items, updating the text of ones already stored."""
    stmt = dialect.insert(session, ITEMS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["item_id"],
        set_={name: stmt.excluded[name] for name in ("title", "year", "genres", "source_id", "fields")},
    )
    rows = [item_row(item) for item in items]
    for start in range(0, len(rows), chunk):
        session.execute(stmt, rows[start : start + chunk])


def _chunks(dataset: Dataset, size: int) -> Iterator[list[NewEvent]]:
    batch: list[NewEvent] = []
    name = dataset.name
    for user, pos, item, ts in dataset.events():
        batch.append(NewEvent(f"{name}:{user}:{pos}", user, item, ts))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_dataset(
    sessions: sessionmaker[Session],
    dataset: Dataset,
    *,
    sequence_length: int,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
) -> LoadResult:
    """Load items, users, events and bounded sequences; safe to run again (idempotent)."""
    started = time.perf_counter()
    with sessions.begin() as session:
        upsert_items(session, list(dataset.items.values()))
    total = dataset.num_interactions
    inserted = duplicates = 0
    with tqdm(total=total, unit="ev", unit_scale=True, desc=f"load {dataset.name}", disable=not progress) as bar:
        for batch in _chunks(dataset, chunk_size):
            with sessions.begin() as session:
                # Every item id was checked against the catalogue when the dataset was built
                # and the catalogue was just upserted, so the per-batch check is skipped.
                result = append_events(session, batch, sequence_length=sequence_length, check_items=False)
            inserted += result.inserted
            duplicates += result.duplicates
            bar.update(len(batch))
    seconds = time.perf_counter() - started
    log.info(
        "loaded %s: %d events (%d new, %d already stored) in %.1fs", dataset.name, total, inserted, duplicates, seconds
    )
    return LoadResult(dataset.name, dataset.num_items, dataset.num_users, total, inserted, duplicates, seconds)


def dataset_from_store(session: Session, name: str = "kdrec", full_history: bool = False) -> Dataset:
    """The store as a core ``Dataset``: the catalogue plus each user's sequence.

    By default the bounded sequences (``user_sequences``) are read; ``full_history`` rebuilds
    every user's complete history from ``events`` ordered by (ts, arrival). Timestamps are
    converted from epoch ms to the dataset's seconds.
    """
    items = {row.item_id: as_item(row) for row in session.scalars(select(CatalogItem).order_by(CatalogItem.item_id))}
    sequences: dict[int, list[int]] = {}
    stamps: dict[int, list[int]] = {}
    if full_history:
        rows = session.execute(
            select(Event.user_id, Event.item_id, Event.ts)
            .order_by(Event.user_id, Event.ts, Event.id)
            .execution_options(yield_per=50_000)
        )
        for user, item, ts in rows:
            sequences.setdefault(user, []).append(item)
            stamps.setdefault(user, []).append(ts // 1000)
    else:
        for user, seq, times in session.execute(
            select(UserSequence.user_id, UserSequence.items, UserSequence.timestamps).order_by(UserSequence.user_id)
        ):
            if seq:
                sequences[user] = list(seq)
                stamps[user] = [ts // 1000 for ts in times]
    return Dataset(name, items, sequences, stamps, meta={"source": "store"})


def table_counts(session: Session) -> dict[str, int]:
    """Row counts of the main tables (for ``kdrec db stats``)."""
    models = {
        "items": CatalogItem,
        "users": User,
        "events": Event,
        "user_sequences": UserSequence,
        "recommendations": Recommendation,
        "model_versions": ModelVersion,
    }
    return {name: int(session.scalar(select(func.count()).select_from(model)) or 0) for name, model in models.items()}
