"""The general item-text folder format: ``sequences.txt`` and ``items.csv`` with any text columns.

``sequences.txt``: one line per user, ``user_id item_1 ... item_n``, oldest first (as for ML-1M).
``items.csv``: UTF-8 CSV whose header starts with ``item_id`` and names any further columns,
e.g. ``item_id,asin,title`` (Amazon) or ``item_id,title,brand,category``. Item ids are integers.

Which columns the LM reads (``text_columns``): the given ones, in that order; by default every
column except the id-like ones (``ID_COLUMNS``, or a name ending in ``_id``), in header order.
A ``title`` column, when read, is the item's title and comes first; otherwise the first text
column is. The first id-like column after ``item_id`` is kept as the item's source id. Text is
HTML-unescaped (``&amp;`` -> ``&``) and may be empty.
"""

from __future__ import annotations

import csv
import html
from collections.abc import Sequence
from pathlib import Path

from core.data.dataset import Dataset, Item
from core.data.errors import DataFormatError, parse_int, require_file
from core.data.formats.sasrec_folder import read_sequences

SEQUENCES = "sequences.txt"
ITEMS = "items.csv"
ID_COLUMNS = frozenset({"item_id", "id", "asin", "sku", "upc", "ean", "isbn", "url"})


def _header(path: Path) -> list[str] | None:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def looks_like(folder: Path) -> bool:
    header = _header(folder / ITEMS) if (folder / ITEMS).is_file() else None
    return (folder / SEQUENCES).is_file() and header is not None and bool(header) and header[0].strip() == "item_id"


def is_id_column(name: str) -> bool:
    return name in ID_COLUMNS or name.endswith("_id")


def text_columns_of(header: Sequence[str], wanted: Sequence[str] | None, path: Path) -> list[str]:
    """The columns read as text, title first (see the module docstring)."""
    if wanted is not None:
        missing = [name for name in wanted if name not in header]
        if missing:
            raise DataFormatError(
                path, f"text column(s) {', '.join(missing)} not in the header ({','.join(header)})", 1
            )
        columns = [name for name in wanted if name != "item_id"]
    else:
        columns = [name for name in header if not is_id_column(name)]
    return sorted(columns, key=lambda name: name != "title")  # stable: title first, the rest in order


def read_items(path: Path, text_columns: Sequence[str] | None = None) -> dict[int, Item]:
    require_file(path)
    items: dict[int, Item] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = csv.reader(handle)
            header = [name.strip() for name in next(rows, [])]
            if not header or header[0] != "item_id":
                raise DataFormatError(path, f"the header must start with item_id, got {','.join(header)!r}", 1)
            if len(set(header)) != len(header):
                raise DataFormatError(path, f"duplicate column names in the header {','.join(header)!r}", 1)
            columns = text_columns_of(header, text_columns, path)
            where = {name: header.index(name) for name in header}
            source = next((name for name in header[1:] if is_id_column(name)), None)
            for row in rows:
                line = rows.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataFormatError(path, f"expected {len(header)} fields, got {len(row)}", line)
                item_id = parse_int(row[0], path, line, "item_id")
                if item_id < 1:
                    raise DataFormatError(path, f"item_id must be >= 1 (0 is padding), got {item_id}", line)
                if item_id in items:
                    raise DataFormatError(path, f"duplicate item id {item_id}", line)
                texts = [(name, html.unescape(row[where[name]]).strip()) for name in columns]
                title = texts[0][1] if texts else ""
                items[item_id] = Item(
                    item_id, title, source_id=row[where[source]] if source else None, fields=tuple(texts[1:])
                )
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not valid UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise DataFormatError(path, f"malformed CSV: {exc}") from None
    if not items:
        raise DataFormatError(path, "no items")
    return items


def load(folder: Path, name: str | None = None, text_columns: Sequence[str] | None = None) -> Dataset:
    items = read_items(folder / ITEMS, text_columns)
    missing = sorted(set(range(1, len(items) + 1)) - set(items))
    if missing:
        raise DataFormatError(
            folder / ITEMS,
            f"item ids must be 1..{len(items)} without gaps; missing "
            f"{', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}",
        )
    sequences = read_sequences(folder / SEQUENCES, items)
    return Dataset(name or folder.name, items, sequences, meta={"format": "item-table"})
