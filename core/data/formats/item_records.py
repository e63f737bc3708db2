"""Files of new catalogue items to publish: CSV with a header, or JSON lines.

Either way each item is a flat record, ``{"item_id": 11925, "title": "...", "brand": "..."}``:

* CSV (``.csv``): UTF-8, a header naming the columns (``title`` required, ``item_id``
  optional, any further text columns); every value is text, an empty ``item_id``, ``year`` or
  ``source_id`` means "none", and ``year`` and ``item_id`` are read as integers.
* JSON lines (any other suffix, e.g. ``.jsonl``): one JSON object per line; blank lines are
  skipped. Values keep their JSON types.

Records come back with the line they were read from, so a record that is rejected later
(``stream.items``) is still reported as ``file:line``; unreadable lines raise a
``DataFormatError`` naming file and line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from core.data.errors import DataFormatError, parse_int, require_file

INTEGER_COLUMNS = ("item_id", "year")


def read_item_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line, record)`` for every item in the file, in file order."""
    path = require_file(Path(path))
    try:
        return _read_csv(path) if path.suffix.lower() == ".csv" else _read_json_lines(path)
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if "title" not in header:
            raise DataFormatError(path, f"the header must name a title column (got {','.join(header)!r})", 1)
        if len(set(header)) != len(header) or "" in header:
            raise DataFormatError(path, "the header has an empty or repeated column name", 1)
        out: list[tuple[int, dict[str, Any]]] = []
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DataFormatError(path, f"{len(row)} fields, the header has {len(header)}", line)
                record: dict[str, Any] = dict(zip(header, row, strict=True))
                for name in INTEGER_COLUMNS:
                    if name in record:
                        text = record[name].strip()
                        record[name] = parse_int(text, path, line, name) if text else None
                if "source_id" in record:
                    record["source_id"] = record["source_id"].strip() or None
                out.append((line, {k: v for k, v in record.items() if v is not None}))
        except csv.Error as exc:
            raise DataFormatError(path, f"bad CSV: {exc}", reader.line_num) from None
        return out


def _read_json_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, f"not JSON: {exc.msg} (column {exc.colno})", line) from None
            if not isinstance(record, dict):
                raise DataFormatError(path, f"expected a JSON object, got {type(record).__name__}", line)
            out.append((line, record))
    return out
