"""Find and open a dataset by name or path, whatever its on-disk format."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from core.data.dataset import Dataset
from core.data.errors import DataFormatError
from core.data.fetch import REMOTES
from core.data.formats import grouplens, item_table, recbole, sasrec_folder
from core.data.kcore import k_core

log = logging.getLogger(__name__)

FORMATS = (item_table, sasrec_folder, recbole, grouplens)
"""Tried in order: the general item-table format before the fixed ML-1M header."""


class DatasetNotFound(FileNotFoundError):
    pass


def find_folder(name_or_path: str | Path, search_dirs: Sequence[Path]) -> Path:
    """A path is used as it is; a name is looked up in each search folder in turn."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate
    for base in search_dirs:
        folder = Path(base) / str(name_or_path)
        if folder.is_dir():
            return folder
    searched = ", ".join(str(Path(base) / str(name_or_path)) for base in search_dirs)
    hint = (
        f"run 'kdrec data fetch {name_or_path}'"
        if str(name_or_path) in REMOTES
        else f"only {' and '.join(sorted(REMOTES))} can be downloaded; put the folder in one of those places"
    )
    raise DatasetNotFound(f"dataset {name_or_path!r} not found (looked in {searched}); {hint} or pass a folder path")


def load_folder(folder: Path, name: str | None = None, text_columns: Sequence[str] | None = None) -> Dataset:
    """Read ``folder`` in the first format it looks like; ``text_columns``: the item-table
    format's columns the LM reads (None: every text column)."""
    for fmt in FORMATS:
        if fmt.looks_like(folder):
            if text_columns is not None and fmt is not item_table:
                log.warning(
                    "text columns %s ignored for %s: its item text is fixed (title, year, genres)",
                    ",".join(text_columns),
                    folder,
                )
            dataset = item_table.load(folder, name, text_columns) if fmt is item_table else fmt.load(folder, name)
            log.info(
                "loaded %s from %s (%s): %s", dataset.name, folder, fmt.__name__.rsplit(".", 1)[-1], dataset.summary()
            )
            return dataset
    raise DataFormatError(
        folder,
        "no known dataset format here (expected sequences.txt + items.csv with a "
        "header starting item_id (or the ML-1M one), RecBole .inter + .item, or "
        "GroupLens ratings.dat/u.data)",
    )


def load_dataset(
    name_or_path: str | Path,
    search_dirs: Sequence[Path],
    min_interactions: int | None = None,
    text_columns: Sequence[str] | None = None,
) -> Dataset:
    """Open a dataset; ``min_interactions`` applies k-core filtering (for raw data);
    ``text_columns`` as for ``load_folder``."""
    folder = find_folder(name_or_path, search_dirs)
    name = str(name_or_path) if not Path(name_or_path).is_dir() else folder.name
    dataset = load_folder(folder, name, text_columns)
    if min_interactions:
        dataset = k_core(dataset, min_interactions)
    return dataset
