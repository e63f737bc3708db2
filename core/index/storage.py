"""Save and load an ``ItemIndex`` next to a model version's artifacts.

A folder (usually the model version's artifact folder) gets two files:

* ``items.faiss``: the index itself (``faiss.write_index``: the id map and the vectors, or
  the HNSW graph);
* ``items.faiss.json``: ``{"format": 1, "model_version": ..., "kind": "flat"|"hnsw",
  "dim": D, "num_items": n, "metric": "inner_product", "hnsw_m": M, "ef_search": ...,
  "faiss_version": ...}``.

Both are written to temporary names and renamed into place, the metadata last, so a reader
never sees a half-written index. ``load_index`` checks the metadata against the index (and
against an expected model version when given).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import faiss

from core.index.item_index import DEFAULT_EF_SEARCH, ItemIndex

INDEX_FILE = "items.faiss"
META_FILE = "items.faiss.json"
FORMAT = 1


class IndexFileError(ValueError):
    """An index folder is missing files or its files disagree."""


def index_paths(folder: str | Path) -> tuple[Path, Path]:
    folder = Path(folder)
    return folder / INDEX_FILE, folder / META_FILE


def save_index(index: ItemIndex, folder: str | Path, model_version: str | int | None = None) -> Path:
    """Write the index and its metadata into ``folder``; returns the index file's path.

    ``model_version`` defaults to the index's own ``model_version``.
    """
    if model_version is None:
        model_version = index.model_version
    index_path, meta_path = index_paths(folder)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "model_version": model_version,
        "kind": index.kind,
        "dim": index.dim,
        "num_items": index.num_items,
        "metric": "inner_product",
        "hnsw_m": index.hnsw_m,
        "ef_search": index.ef_search,
        "faiss_version": faiss.__version__,
    }
    tmp_index = index_path.with_name(index_path.name + ".tmp")
    faiss.write_index(index.index, str(tmp_index))
    os.replace(tmp_index, index_path)
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_meta, meta_path)
    return index_path


def read_meta(folder: str | Path) -> dict[str, Any]:
    _, meta_path = index_paths(folder)
    if not meta_path.is_file():
        raise IndexFileError(f"no index metadata at {meta_path}")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise IndexFileError(f"{meta_path}: unsupported index format {meta.get('format')!r}")
    return meta


def load_index(folder: str | Path, model_version: str | int | None = None) -> ItemIndex:
    """Read an index saved by ``save_index``; checks the metadata (and model version if given)."""
    index_path, meta_path = index_paths(folder)
    meta = read_meta(folder)
    if model_version is not None and str(meta.get("model_version")) != str(model_version):
        raise IndexFileError(
            f"{meta_path} belongs to model version {meta.get('model_version')!r}, not {model_version!r}"
        )
    if not index_path.is_file():
        raise IndexFileError(f"no index file at {index_path}")
    raw = faiss.read_index(str(index_path))
    if raw.d != meta["dim"] or raw.ntotal != meta["num_items"]:
        raise IndexFileError(
            f"{index_path} holds {raw.ntotal} x {raw.d} vectors but the metadata "
            f"says {meta['num_items']} x {meta['dim']}"
        )
    return ItemIndex(
        raw,
        meta["kind"],
        meta["num_items"],
        hnsw_m=meta.get("hnsw_m"),
        ef_search=meta.get("ef_search") or DEFAULT_EF_SEARCH,
        model_version=meta.get("model_version"),
    )
