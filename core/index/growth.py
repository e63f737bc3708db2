"""Growing a FAISS item index by a few items without touching the one being searched.

New items (known from their text only, ``core.distill.text_map``) join a live index between two
model versions. The index in use is never modified: ``grown`` returns a copy
(``faiss.clone_index``) with the new vectors added, and the caller swaps one reference, so a
search running in another thread sees the old index or the new one, never a half-updated one.

Ids stay dense: ids above the current ``num_items`` must be ``num_items + 1``, ``num_items + 2``,
... (in any order). An id already present is replaced: a flat index removes it and adds the new
vector; an HNSW graph cannot drop a vector, so it is rebuilt from all vectors (rare: only when
a text-only item's text changes).
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

FAISS: Any = faiss
"""faiss untyped: the stubs lack the wrapped ``index`` and ``id_map`` of an ``IndexIDMap``."""
DEFAULT_HNSW_M = 32


def grown(
    index: faiss.Index, kind: str, num_items: int, ids: np.ndarray, vectors: np.ndarray, hnsw_m: int | None
) -> tuple[faiss.Index, int]:
    """A copy of ``index`` (ids 1..num_items) also holding ``vectors`` ``[m, D]`` under ``ids``;
    returns it with its new item count."""
    if vectors.ndim != 2 or vectors.shape != (len(ids), index.d):
        raise ValueError(f"expected [{len(ids)}, {index.d}] vectors, got shape {vectors.shape}")
    if len(np.unique(ids)) != len(ids) or (ids < 1).any():
        raise ValueError("ids must be distinct item ids >= 1")
    fresh = np.sort(ids[ids > num_items])
    expected = np.arange(num_items + 1, num_items + 1 + len(fresh), dtype=np.int64)
    if not np.array_equal(fresh, expected):
        raise ValueError(f"new ids must continue the dense range from {num_items + 1}, got {fresh[:5].tolist()}")
    present = ids[ids <= num_items]
    if len(present) and kind == "hnsw":
        copy: Any = _rebuilt_hnsw(index, ids, vectors, hnsw_m or DEFAULT_HNSW_M)
    else:
        copy = faiss.clone_index(index)
        if len(present):
            copy.remove_ids(present)
        copy.add_with_ids(vectors, ids)
    if copy.ntotal != num_items + len(fresh):
        raise ValueError(f"the grown index holds {copy.ntotal} vectors, expected {num_items + len(fresh)}")
    return copy, num_items + len(fresh)


def _rebuilt_hnsw(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, hnsw_m: int) -> faiss.Index:
    """A fresh HNSW index of every vector, ``ids`` taking ``vectors``' rows."""
    holder = FAISS.downcast_index(index)
    inner = FAISS.downcast_index(holder.index)
    old_ids = faiss.vector_to_array(holder.id_map)
    keep = ~np.isin(old_ids, ids)
    matrix = np.concatenate([inner.reconstruct_n(0, inner.ntotal)[keep], vectors]).astype(np.float32)
    graph = faiss.IndexHNSWFlat(int(index.d), hnsw_m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = inner.hnsw.efConstruction
    graph.hnsw.efSearch = inner.hnsw.efSearch
    rebuilt = faiss.IndexIDMap(graph)
    rebuilt.add_with_ids(np.ascontiguousarray(matrix), np.concatenate([old_ids[keep], ids]).astype(np.int64))
    return rebuilt
