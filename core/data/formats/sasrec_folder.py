"""The 5-core ML-1M folder format: ``sequences.txt`` and ``items.csv``.

``sequences.txt`` has one line per user, ``user_id item_1 ... item_n``, oldest first.
``items.csv`` has the header ``sas_item_id,movielens_id,title,year,genres`` (genres
``|``-separated). There are no timestamps.
"""

from __future__ import annotations

import csv
from pathlib import Path

from core.data.dataset import Dataset, Item
from core.data.errors import DataFormatError, parse_int, require_file
from core.data.formats.text import parse_year, read_lines

SEQUENCES = "sequences.txt"
ITEMS = "items.csv"
COLUMNS = ["sas_item_id", "movielens_id", "title", "year", "genres"]


def looks_like(folder: Path) -> bool:
    return (folder / SEQUENCES).is_file() and (folder / ITEMS).is_file()


def read_items(path: Path) -> dict[int, Item]:
    require_file(path)
    items: dict[int, Item] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header != COLUMNS:
            raise DataFormatError(
                path,
                f"expected the header {','.join(COLUMNS)} (ML-1M) or one starting "
                f"with item_id (any text columns), got {header}",
                1,
            )
        for row in rows:
            line = rows.line_num
            if not row:
                continue
            if len(row) != len(COLUMNS):
                raise DataFormatError(path, f"expected {len(COLUMNS)} fields, got {len(row)}", line)
            item_id = parse_int(row[0], path, line, "sas_item_id")
            if item_id in items:
                raise DataFormatError(path, f"duplicate item id {item_id}", line)
            genres = tuple(g for g in row[4].split("|") if g)
            items[item_id] = Item(item_id, row[2], parse_year(row[3]), genres, source_id=row[1])
    if not items:
        raise DataFormatError(path, "no items")
    return items


def read_sequences(path: Path, known_items: dict[int, Item]) -> dict[int, list[int]]:
    sequences: dict[int, list[int]] = {}
    for line, text in read_lines(path):
        fields = text.split()
        if len(fields) < 2:
            raise DataFormatError(path, "expected 'user_id item_1 ... item_n'", line)
        user = parse_int(fields[0], path, line, "user_id")
        if user in sequences:
            raise DataFormatError(path, f"user {user} appears twice", line)
        seq = [parse_int(field, path, line, "item id") for field in fields[1:]]
        for item in seq:
            if item not in known_items:
                raise DataFormatError(path, f"item {item} is not in the catalogue", line)
        sequences[user] = seq
    return sequences


def load(folder: Path, name: str | None = None) -> Dataset:
    items = read_items(folder / ITEMS)
    sequences = read_sequences(folder / SEQUENCES, items)
    ids = sorted(items)
    if ids != list(range(1, len(ids) + 1)):
        return Dataset.reindexed(name or folder.name, items, sequences)
    return Dataset(name or folder.name, items, sequences, meta={"format": "sasrec-folder"})
