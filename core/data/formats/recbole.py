"""RecBole atomic files: ``<name>.inter`` and ``<name>.item``, tab-separated.

The first row names the fields as ``name:type``. Interactions are ordered per user by
timestamp; ties keep file order.
"""

from __future__ import annotations

from pathlib import Path

from core.data.dataset import Dataset, Item
from core.data.errors import DataFormatError
from core.data.formats.text import parse_year, read_lines


def _find(folder: Path, suffix: str) -> Path | None:
    matches = sorted(folder.glob(f"*{suffix}"))
    return matches[0] if matches else None


def looks_like(folder: Path) -> bool:
    return _find(folder, ".inter") is not None and _find(folder, ".item") is not None


def _header(path: Path) -> tuple[dict[str, int], list[tuple[int, str]]]:
    lines = list(read_lines(path))
    if not lines:
        raise DataFormatError(path, "file has no rows")
    names = [field.split(":")[0] for field in lines[0][1].split("\t")]
    return {name: index for index, name in enumerate(names)}, lines[1:]


def _column(columns: dict[str, int], path: Path, *candidates: str) -> int:
    for name in candidates:
        if name in columns:
            return columns[name]
    raise DataFormatError(path, f"header lacks a {' or '.join(candidates)} field", 1)


def read_items(path: Path) -> dict[str, Item]:
    columns, rows = _header(path)
    id_col = _column(columns, path, "item_id")
    title_col = _column(columns, path, "movie_title", "title")
    year_col = columns.get("release_year")
    genre_col = columns.get("class", columns.get("genre"))
    items: dict[str, Item] = {}
    for line, text in rows:
        fields = text.split("\t")
        if len(fields) <= max(id_col, title_col):
            raise DataFormatError(path, f"expected {len(columns)} tab-separated fields, got {len(fields)}", line)
        source = fields[id_col].strip()
        year = parse_year(fields[year_col]) if year_col is not None and year_col < len(fields) else None
        genres = tuple(fields[genre_col].split()) if genre_col is not None and genre_col < len(fields) else ()
        items[source] = Item(0, fields[title_col].strip(), year, genres, source_id=source)
    return items


def read_interactions(path: Path, items: dict[str, Item]) -> tuple[dict[int, list[str]], dict[int, list[int]]]:
    columns, rows = _header(path)
    user_col = _column(columns, path, "user_id")
    item_col = _column(columns, path, "item_id")
    time_col = _column(columns, path, "timestamp")
    events: dict[int, list[tuple[float, int, str]]] = {}
    for order, (line, text) in enumerate(rows):
        fields = text.split("\t")
        if len(fields) != len(columns):
            raise DataFormatError(path, f"expected {len(columns)} tab-separated fields, got {len(fields)}", line)
        try:
            user = int(fields[user_col])
            ts = float(fields[time_col])
        except ValueError:
            raise DataFormatError(path, "user_id must be an integer and timestamp a number", line) from None
        item = fields[item_col].strip()
        if item not in items:
            raise DataFormatError(path, f"item {item} is not in the catalogue", line)
        events.setdefault(user, []).append((ts, order, item))
    sequences: dict[int, list[str]] = {}
    timestamps: dict[int, list[int]] = {}
    for user, rows_of_user in events.items():
        rows_of_user.sort()
        sequences[user] = [item for _, _, item in rows_of_user]
        timestamps[user] = [int(ts) for ts, _, _ in rows_of_user]
    return sequences, timestamps


def load(folder: Path, name: str | None = None) -> Dataset:
    inter, item = _find(folder, ".inter"), _find(folder, ".item")
    if inter is None or item is None:
        raise DataFormatError(folder, "expected a .inter and a .item file")
    items = read_items(item)
    sequences, timestamps = read_interactions(inter, items)
    return Dataset.reindexed(name or folder.name, items, sequences, timestamps, meta={"format": "recbole"})
