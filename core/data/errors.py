"""Errors raised for bad input files: they always name the file, and the line when there is one."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file is missing, empty or malformed."""

    def __init__(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


def require_file(path: Path) -> Path:
    """Return ``path`` if it is a non-empty file, else raise a DataFormatError naming it."""
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataFormatError(path, "file is empty")
    return path


def parse_int(text: str, path: Path, line: int, field: str) -> int:
    """Parse an integer field, or raise an error naming file, line and field."""
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(path, f"{field} is not an integer: {text!r}", line) from None
