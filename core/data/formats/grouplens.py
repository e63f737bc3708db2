"""GroupLens' own MovieLens archives, as unpacked from ``ml-1m.zip`` and ``ml-100k.zip``.

- ML-1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) and ``movies.dat``
  (``MovieID::Title (Year)::Genre|Genre``), ISO-8859-1.
- ML-100K: ``u.data`` (tab-separated user, item, rating, timestamp) and ``u.item``
  (``|``-separated, 19 genre flags at the end), ISO-8859-1.
Every rating counts as an interaction; each user's items are ordered by timestamp (ties
by file order).
"""

from __future__ import annotations

from pathlib import Path

from core.data.dataset import Dataset, Item
from core.data.errors import DataFormatError, parse_int
from core.data.formats.text import read_lines, split_title_year

ENCODING = "iso-8859-1"
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def looks_like(folder: Path) -> bool:
    return ((folder / "ratings.dat").is_file() and (folder / "movies.dat").is_file()) or (
        (folder / "u.data").is_file() and (folder / "u.item").is_file()
    )


def _read_ml1m_movies(path: Path) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for line, text in read_lines(path, ENCODING):
        fields = text.split("::")
        if len(fields) != 3:
            raise DataFormatError(path, "expected 'MovieID::Title::Genres'", line)
        title, year = split_title_year(fields[1])
        items[fields[0]] = Item(0, title, year, tuple(g for g in fields[2].split("|") if g))
    return items


def _read_ml100k_movies(path: Path) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for line, text in read_lines(path, ENCODING):
        fields = text.split("|")
        if len(fields) != 5 + len(ML100K_GENRES):
            raise DataFormatError(path, f"expected {5 + len(ML100K_GENRES)} '|'-separated fields", line)
        title, year = split_title_year(fields[1])
        genres = tuple(g for g, flag in zip(ML100K_GENRES, fields[5:], strict=False) if flag.strip() == "1")
        items[fields[0]] = Item(0, title, year, genres)
    return items


def _read_ratings(path: Path, separator: str, items: dict[str, Item]):
    events: dict[int, list[tuple[int, int, str]]] = {}
    for order, (line, text) in enumerate(read_lines(path, ENCODING)):
        fields = text.split(separator)
        if len(fields) != 4:
            raise DataFormatError(path, "expected user, item, rating, timestamp", line)
        user = parse_int(fields[0], path, line, "user id")
        ts = parse_int(fields[3], path, line, "timestamp")
        if fields[1] not in items:
            raise DataFormatError(path, f"item {fields[1]} is not in the catalogue", line)
        events.setdefault(user, []).append((ts, order, fields[1]))
    sequences, timestamps = {}, {}
    for user in sorted(events):
        rows = sorted(events[user])
        sequences[user] = [item for _, _, item in rows]
        timestamps[user] = [ts for ts, _, _ in rows]
    return sequences, timestamps


def load(folder: Path, name: str | None = None) -> Dataset:
    if (folder / "ratings.dat").is_file():
        items = _read_ml1m_movies(folder / "movies.dat")
        sequences, timestamps = _read_ratings(folder / "ratings.dat", "::", items)
    elif (folder / "u.data").is_file():
        items = _read_ml100k_movies(folder / "u.item")
        sequences, timestamps = _read_ratings(folder / "u.data", "\t", items)
    else:
        raise DataFormatError(folder, "expected ratings.dat/movies.dat or u.data/u.item")
    return Dataset.reindexed(name or folder.name, items, sequences, timestamps, meta={"format": "grouplens"})
