"""Small helpers shared by the format readers: reading lines and parsing movie titles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from core.data.errors import DataFormatError, require_file

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


def read_lines(path: Path, encoding: str = "utf-8", skip_header: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for the non-blank lines of a file, 1-based."""
    require_file(path)
    try:
        with path.open(encoding=encoding, newline="") as handle:
            for number, line in enumerate(handle, start=1):
                if skip_header and number == 1:
                    continue
                line = line.rstrip("\r\n")
                if line.strip():
                    yield number, line
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not valid {encoding} text ({exc.reason})") from None


def split_title_year(text: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title without a year keeps year None."""
    match = _TITLE_YEAR.match(text.strip())
    if match is None:
        return text.strip(), None
    return match.group("title"), int(match.group("year"))


def parse_year(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None
