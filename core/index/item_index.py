"""FAISS maximum-inner-product index over item embeddings, ids = item ids, seen items excluded.

Built from an item-embedding matrix ``[num_items + 1, D]`` whose row 0 (padding) is left out;
rows 1..n are added with their row number as FAISS id (``IndexIDMap``), so results are item ids.

* ``flat`` (default): ``IndexFlatIP``, exact, the same top-K as brute-force ``q @ E.T``.
* ``hnsw``: ``IndexHNSWFlat(METRIC_INNER_PRODUCT)``, approximate, for large catalogues.

Excluding each query's own seen items (every query has a different set) is exact for ``flat``
with every strategy (and never returns a seen item with HNSW); ``auto`` picks the fastest one:

* ``masked`` (``flat`` only; ``auto``'s choice there): the brute-force scores ``Q @ E.T`` that
  ``IndexFlatIP`` computes, as one matrix product over the index's own vectors (read out of the
  FAISS index once), each row's seen items set to -inf, then the top K per row
  (``torch.topk``). FAISS offers no per-query exclusion, and its own scan cannot be told to
  skip a different set per query in one call: this does the same arithmetic in one GEMM.

* ``overfetch``: one batched search (for flat, a single GEMM over the whole batch) for
  ``k + max |seen|`` neighbours, then seen items are removed row by row (vectorised). The
  top-K unseen items are always among them, so this is exact. Its cost grows with the
  largest seen set in the batch.
* ``selector``: one search per query with an ``IDSelectorBitmap`` of allowed ids in
  ``SearchParameters`` (FAISS translates it through the id map), so seen items are skipped
  during the scan (flat) or graph walk (HNSW). Its cost does not depend on the seen sets.

For ``hnsw``, ``auto`` uses ``overfetch`` for batches when ``fetch = k + max |seen|`` is at most
``OVERFETCH_MAX`` or the catalogue has at least ``OVERFETCH_RATIO * fetch`` items, and
``selector`` otherwise (single queries, large seen sets in small catalogues). For HNSW the
over-fetch search runs with ``efSearch >= fetch``, the selector search with the index's
``ef_search``. Measured (1 thread, D=64, B=256, k=10, best of 3; overfetch / selector):
flat, 3,416 items (no exclusion: 5 ms), seen <= 50: 13 / 14 ms, <= 100: 19 / 21 ms,
<= 200: 36 / 22 ms; flat, 50,000 items (no exclusion: 102 ms), seen <= 200: 134 / 159 ms;
HNSW M=32, 50,000 random Gaussian items, seen <= 200: 224 ms, recall@10 0.984 / 251 ms, 0.941.
``masked`` (``python -m bench.index_search``, bench/results/index-search.md: 1 thread, D=64,
3,416 items, k=10, per query): 12-20 us at B=500 and ~18 us at B=8, against 39-56 us for
``selector`` and 43-100 us for ``overfetch``, the same items; at B=1 they are alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
import torch

from core.index.growth import grown
from core.settings import ServeConfig

IndexKind = Literal["flat", "hnsw"]
Strategy = Literal["auto", "masked", "overfetch", "selector"]
FAISS: Any = faiss
"""faiss untyped: its bundled stubs lack ``SearchParametersHNSW``, the ``sel`` keyword and the
wrapped ``index`` of an ``IndexIDMap``, all of which exist at run time."""
OVERFETCH_MAX = 128
OVERFETCH_RATIO = 32
MASKED_SCORES = 1 << 22
"""Scores the ``masked`` strategy holds at once (16 MiB): queries are scored in chunks of
``MASKED_SCORES // num_items``, so a large batch over a large catalogue stays bounded."""
DEFAULT_EF_SEARCH = 128
DEFAULT_EF_CONSTRUCTION = 80


@dataclass(frozen=True)
class SearchResult:
    """``ids`` int64 ``[B, k]`` and ``scores`` float32 ``[B, k]``, best first per row.

    Where fewer than k items are left (tiny catalogue, many exclusions) the row ends with
    id -1 and score -inf.
    """

    ids: np.ndarray
    scores: np.ndarray

    def row(self, i: int) -> list[tuple[int, float]]:
        """Query i's ``(item_id, score)`` pairs without the -1 padding."""
        return [(int(item), float(score)) for item, score in zip(self.ids[i], self.scores[i], strict=True) if item >= 0]

    def rows(self) -> list[list[tuple[int, float]]]:
        return [self.row(i) for i in range(len(self.ids))]


def as_float32(matrix: Any) -> np.ndarray:
    """A C-contiguous float32 numpy copy of a numpy array or torch tensor."""
    if hasattr(matrix, "detach"):
        matrix = matrix.detach().float().cpu().numpy()
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))


class ItemIndex:
    """A FAISS index whose ids are item ids 1..num_items."""

    def __init__(
        self,
        index: faiss.Index,
        kind: IndexKind,
        num_items: int,
        *,
        hnsw_m: int | None = None,
        ef_search: int = DEFAULT_EF_SEARCH,
        model_version: str | int | None = None,
    ) -> None:
        if index.ntotal != num_items:
            raise ValueError(f"index holds {index.ntotal} vectors, expected {num_items} items")
        self.index = index
        self.kind = kind
        self.num_items = num_items
        self.dim = int(index.d)
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.model_version = model_version  # whose item embeddings these are (kept in the metadata)
        self._dense: tuple[torch.Tensor, np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(
        cls,
        item_embeddings: Any,
        kind: IndexKind = "flat",
        *,
        hnsw_m: int = 32,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        model_version: str | int | None = None,
    ) -> ItemIndex:
        """Index rows 1..n of ``item_embeddings`` (``[num_items + 1, D]``) under ids 1..n."""
        matrix = as_float32(item_embeddings)
        if matrix.ndim != 2 or matrix.shape[0] < 2:
            raise ValueError(f"expected [num_items + 1, D] embeddings, got shape {matrix.shape}")
        num_items, dim = matrix.shape[0] - 1, matrix.shape[1]
        if kind == "flat":
            inner: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
            inner.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"unknown index kind {kind!r} (flat or hnsw)")
        index = faiss.IndexIDMap(inner)
        index.add_with_ids(matrix[1:], np.arange(1, num_items + 1, dtype=np.int64))
        return cls(
            index,
            kind,
            num_items,
            hnsw_m=hnsw_m if kind == "hnsw" else None,
            ef_search=ef_search,
            model_version=model_version,
        )

    @classmethod
    def from_config(cls, item_embeddings: Any, serve: ServeConfig, model_version: str | int | None = None) -> ItemIndex:
        """Build the kind of index ``ServeConfig`` asks for (``index``, ``hnsw_m``)."""
        return cls.build(item_embeddings, serve.index, hnsw_m=serve.hnsw_m, model_version=model_version)

    # --- growth ------------------------------------------------------------------------------
    def with_items(self, ids: np.ndarray, vectors: Any) -> ItemIndex:
        """A NEW index holding these ``[m, D]`` vectors under ``ids`` besides everything here.

        Copy-on-write (``core.index.growth``): this object is left untouched, so a thread
        searching it never sees a half-updated index; the caller swaps one reference. Ids above
        ``num_items`` must continue the dense range; an id already present is replaced.
        """
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(wanted):
            return self
        index, num_items = grown(self.index, self.kind, self.num_items, wanted, as_float32(vectors), self.hnsw_m)
        return ItemIndex(
            index, self.kind, num_items, hnsw_m=self.hnsw_m, ef_search=self.ef_search, model_version=self.model_version
        )

    # --- search --------------------------------------------------------------------------
    def search(
        self, queries: Any, k: int, exclude: Sequence[Collection[int]] | None = None, strategy: Strategy = "auto"
    ) -> SearchResult:
        """Top-``k`` items by inner product for each query row, minus that row's ``exclude`` ids."""
        vectors = as_float32(queries)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"queries must be [B, {self.dim}], got shape {vectors.shape}")
        if exclude is not None and len(exclude) != len(vectors):
            raise ValueError(f"{len(exclude)} exclusion sets for {len(vectors)} queries")
        k = max(1, int(k))
        if exclude is not None and (strategy == "masked" or (strategy == "auto" and self.kind == "flat")):
            return self._search_masked(vectors, k, exclude)
        seen = [self._valid_ids(row) for row in exclude] if exclude is not None else None
        if not seen or not any(len(row) for row in seen):
            scores, ids = self._search(vectors, min(k, self.num_items))
            return _padded(ids, scores, k)
        if strategy == "auto":
            fetch = k + max(len(row) for row in seen)
            cheap = fetch <= OVERFETCH_MAX or self.num_items >= OVERFETCH_RATIO * fetch
            strategy = "overfetch" if len(vectors) > 1 and cheap else "selector"
        if strategy == "overfetch":
            return self._search_overfetch(vectors, k, seen)
        if strategy == "selector":
            return self._search_selector(vectors, k, seen)
        raise ValueError(f"unknown strategy {strategy!r}")

    def _valid_ids(self, ids: Collection[int]) -> np.ndarray:
        array = np.unique(np.fromiter(ids, dtype=np.int64, count=len(ids)))
        return array[(array >= 1) & (array <= self.num_items)]

    def _params(self, k: int, selector: faiss.IDSelector | None = None) -> faiss.SearchParameters:
        if self.kind == "hnsw":
            return FAISS.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
        return FAISS.SearchParameters(sel=selector)

    def _search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = self._params(k) if self.kind == "hnsw" else None
        return self.index.search(vectors, k, params=params)

    def _flat_vectors(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """The flat index's vectors ``[n, D]`` (copied out of FAISS once), each row's item id, and
        each item id's row."""
        if self._dense is None:
            if self.kind != "flat":
                raise ValueError("the masked strategy needs a flat index (exact scores); use overfetch or selector")
            holder = FAISS.downcast_index(self.index)
            inner = faiss.downcast_index(holder.index) if hasattr(holder, "id_map") else holder
            vectors = inner.reconstruct_n(0, inner.ntotal)
            ids = (
                faiss.vector_to_array(holder.id_map)
                if hasattr(holder, "id_map")
                else np.arange(1, inner.ntotal + 1, dtype=np.int64)
            )
            row_of = np.full(self.num_items + 1, -1, dtype=np.int64)
            row_of[ids] = np.arange(len(ids), dtype=np.int64)
            self._dense = (torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)), ids, row_of)
        return self._dense

    def _search_masked(self, vectors: np.ndarray, k: int, exclude: Sequence[Collection[int]]) -> SearchResult:
        items, ids_of_row, row_of = self._flat_vectors()
        k_eff = min(k, self.num_items)
        lengths = [len(row) for row in exclude]
        excluded = np.fromiter(itertools.chain.from_iterable(exclude), dtype=np.int64, count=sum(lengths))
        rows = np.repeat(np.arange(len(exclude), dtype=np.int64), lengths)
        valid = (excluded >= 1) & (excluded <= self.num_items)  # padding and unknown ids are ignored
        rows, columns = rows[valid], row_of[excluded[valid]]
        top = np.empty((len(vectors), k_eff), dtype=np.float32)
        top_rows = np.empty((len(vectors), k_eff), dtype=np.int64)
        chunk = max(1, MASKED_SCORES // max(self.num_items, 1))  # bounds the [chunk, n] score matrix
        with torch.inference_mode():
            for start in range(0, len(vectors), chunk):
                stop = min(start + chunk, len(vectors))
                scores = torch.from_numpy(vectors[start:stop]) @ items.T  # what IndexFlatIP computes
                inside = (rows >= start) & (rows < stop)
                if inside.any():
                    scores[torch.from_numpy(rows[inside] - start), torch.from_numpy(columns[inside])] = -np.inf
                values, positions = torch.topk(scores, k_eff, dim=1)
                top[start:stop], top_rows[start:stop] = values.numpy(), positions.numpy()
        return _padded(np.where(np.isneginf(top), -1, ids_of_row[top_rows]), top, k)

    def _search_overfetch(self, vectors: np.ndarray, k: int, seen: list[np.ndarray]) -> SearchResult:
        fetch = min(k + max(len(row) for row in seen), self.num_items)
        scores, ids = self._search(vectors, fetch)
        width = self.num_items + 1
        rows = np.repeat(np.arange(len(seen), dtype=np.int64), [len(row) for row in seen])
        excluded_keys = rows * width + np.concatenate(seen)
        keys = np.arange(len(ids), dtype=np.int64)[:, None] * width + ids
        drop = (ids < 0) | np.isin(keys, excluded_keys)
        order = np.argsort(drop, axis=1, kind="stable")[:, :k]  # kept ones first, rank order kept
        kept_ids = np.take_along_axis(ids, order, axis=1)
        kept_scores = np.take_along_axis(scores, order, axis=1)
        dropped = np.take_along_axis(drop, order, axis=1)
        return _padded(np.where(dropped, -1, kept_ids), np.where(dropped, -np.inf, kept_scores), k)

    def _search_selector(self, vectors: np.ndarray, k: int, seen: list[np.ndarray]) -> SearchResult:
        k_eff = min(k, self.num_items)
        ids = np.full((len(vectors), k_eff), -1, dtype=np.int64)
        scores = np.full((len(vectors), k_eff), -np.inf, dtype=np.float32)
        allowed = np.ones(self.num_items + 1, dtype=bool)
        allowed[0] = False
        for row, excluded in enumerate(seen):
            allowed[excluded] = False
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))  # n in bytes
            row_scores, row_ids = self.index.search(vectors[row : row + 1], k_eff, params=self._params(k_eff, selector))
            ids[row], scores[row] = row_ids[0], row_scores[0]
            allowed[excluded] = True
        return _padded(ids, scores, k)


def _padded(ids: np.ndarray, scores: np.ndarray, k: int) -> SearchResult:
    """Pad to k columns; FAISS's -1 ids get score -inf."""
    ids = ids.astype(np.int64, copy=False)
    scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
    if ids.shape[1] < k:
        extra = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, extra)), constant_values=-1)
        scores = np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf)
    return SearchResult(ids, scores)
