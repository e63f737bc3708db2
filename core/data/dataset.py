"""The one in-memory dataset type: an item catalogue and per-user chronological sequences."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

SourceId = TypeVar("SourceId", bound=Hashable)
"""An item id as the source writes it (an int, a string such as a MovieLens id or an ASIN)."""


@dataclass(frozen=True)
class Item:
    """A catalogue entry. ``item_id`` is the dense id used everywhere in kdrec (1..n)."""

    item_id: int
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    source_id: str | None = None
    """The id in the original source (e.g. the MovieLens movie id), when it differs."""
    fields: tuple[tuple[str, str], ...] = ()
    """Further text fields, ``(column, value)`` in the order the LM reads them (e.g. brand, category)."""

    def text(self) -> str:
        """The text the language model reads for this item: title, year and genres (movies), then
        any further fields, e.g. ``"Title. Brand: X. Category: Y."``; empty parts are left out.
        An item without further fields reads as before they existed (``"Title (1995)"``)."""
        head = f"{self.title} ({self.year})" if self.year else self.title
        lead = f"{head}. Genres: {', '.join(self.genres)}." if self.genres else head
        rest = [_sentence(f"{name.replace('_', ' ').capitalize()}: {value}") for name, value in self.fields if value]
        if not rest:
            return lead
        return " ".join([_sentence(lead), *rest] if lead.strip() else rest)


def _sentence(text: str) -> str:
    """``text`` ending in a full stop (one already ending in ``.``, ``!`` or ``?`` is kept)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


@dataclass
class Dataset:
    """Item catalogue plus each user's items, oldest first, with timestamps when known.

    Item ids are dense, 1..num_items (0 is reserved for padding in models).
    ``timestamps[user][i]`` is the unix time in seconds of ``sequences[user][i]``.
    """

    name: str
    items: dict[int, Item]
    sequences: dict[int, list[int]]
    timestamps: dict[int, list[int]] | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = sorted(self.items)
        if ids != list(range(1, len(ids) + 1)):
            raise ValueError(f"{self.name}: item ids must be dense 1..n; call Dataset.reindexed()")
        if self.timestamps is not None:
            for user, seq in self.sequences.items():
                if len(self.timestamps.get(user, ())) != len(seq):
                    raise ValueError(
                        f"{self.name}: user {user} has {len(seq)} items but "
                        f"{len(self.timestamps.get(user, ()))} timestamps"
                    )

    @property
    def num_items(self) -> int:
        return len(self.items)

    @property
    def num_users(self) -> int:
        return len(self.sequences)

    @property
    def num_interactions(self) -> int:
        return sum(len(seq) for seq in self.sequences.values())

    def item_texts(self) -> list[str]:
        """Texts of items 1..n in id order (index 0 is item 1)."""
        return [self.items[i].text() for i in range(1, self.num_items + 1)]

    def item_counts(self) -> np.ndarray:
        """Interactions per item id (index 0, the padding id, is always 0)."""
        return item_counts(self.sequences.values(), self.num_items)

    def events(self) -> Iterator[tuple[int, int, int, int]]:
        """Yield ``(user_id, position, item_id, ts_ms)`` in per-user order.

        Datasets without timestamps (the 5-core ML-1M) use the position as time, so
        the order of a replay is the order of the sequence.
        """
        for user, seq in self.sequences.items():
            times = self.timestamps[user] if self.timestamps is not None else None
            for pos, item in enumerate(seq):
                ts_ms = times[pos] * 1000 if times is not None else pos
                yield user, pos, item, ts_ms

    def summary(self) -> dict[str, int]:
        return {"users": self.num_users, "items": self.num_items, "interactions": self.num_interactions}

    @staticmethod
    def reindexed(
        name: str,
        items: Mapping[SourceId, Item],
        sequences: Mapping[int, Sequence[SourceId]],
        timestamps: dict[int, list[int]] | None = None,
        meta: dict[str, str] | None = None,
    ) -> Dataset:
        """Build a dataset from source ids, mapping items to dense ids 1..n.

        Items are numbered in order of their source id (numerically when the ids are numbers);
        catalogue items that no sequence uses are dropped.
        """
        used = {item for seq in sequences.values() for item in seq}
        ordered = sorted(used, key=lambda key: (0, int(str(key))) if str(key).isdigit() else (1, str(key)))
        mapping = {source: dense for dense, source in enumerate(ordered, start=1)}
        dense_items = {
            mapping[source]: replace(items[source], item_id=mapping[source], source_id=str(source))
            for source in ordered
        }
        dense_sequences = {user: [mapping[item] for item in seq] for user, seq in sequences.items()}
        return Dataset(name, dense_items, dense_sequences, timestamps, dict(meta or {}))


def item_counts(sequences: Iterable[Sequence[int]], num_items: int) -> np.ndarray:
    """How often each item id (0..num_items) occurs in ``sequences``."""
    counts = np.zeros(num_items + 1, dtype=np.int64)
    for seq in sequences:
        np.add.at(counts, np.asarray(seq, dtype=np.int64), 1)
    return counts
