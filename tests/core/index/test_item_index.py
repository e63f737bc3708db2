"""FAISS index results against brute-force scoring, with and without seen-item exclusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.index import ItemIndex
from core.settings import ServeConfig
from tests.core.index.helpers import assert_same_top_k, brute_force

NUM_ITEMS, DIM = 1500, 32


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((NUM_ITEMS + 1, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def flat(embeddings: np.ndarray) -> ItemIndex:
    return ItemIndex.build(embeddings)


def seen_sets(rng: np.random.Generator, rows: int, largest: int) -> list[set[int]]:
    sets = [
        set(rng.choice(np.arange(1, NUM_ITEMS + 1), size=rng.integers(0, largest + 1), replace=False).tolist())
        for _ in range(rows)
    ]
    sets[0] = set()
    sets[1] |= {0, NUM_ITEMS + 7, -3}  # padding and unknown ids are ignored
    return sets


@pytest.mark.parametrize("batch", [1, 5, 40])  # FAISS uses BLAS from 20 queries on
def test_flat_equals_brute_force(flat: ItemIndex, embeddings: np.ndarray, batch: int) -> None:
    queries = np.random.default_rng(batch).standard_normal((batch, DIM)).astype(np.float32)
    result = flat.search(queries, 10)
    assert_same_top_k(result, *brute_force(queries, embeddings, 10), queries, embeddings)
    assert result.ids.min() >= 1  # row 0 (padding) is never indexed


@pytest.mark.parametrize("strategy", ["auto", "masked", "overfetch", "selector"])
@pytest.mark.parametrize("largest", [20, 300])
def test_flat_excludes_seen_exactly(flat: ItemIndex, embeddings: np.ndarray, strategy: str, largest: int) -> None:
    rng = np.random.default_rng(largest)
    queries = rng.standard_normal((30, DIM)).astype(np.float32)
    # seen sets biased towards each query's best items, so exclusion changes the answer
    best = brute_force(queries, embeddings, 40)[0]
    seen = seen_sets(rng, len(queries), largest)
    for row in range(2, len(queries)):
        seen[row] |= set(best[row, : row % 12].tolist())
    result = flat.search(queries, 10, seen, strategy=strategy)  # type: ignore[arg-type]
    assert_same_top_k(result, *brute_force(queries, embeddings, 10, seen), queries, embeddings)
    for row, excluded in enumerate(seen):
        assert not excluded & set(result.ids[row].tolist())


def test_more_exclusions_than_items_pads_with_minus_one() -> None:
    embeddings = np.random.default_rng(1).standard_normal((9, 4)).astype(np.float32)  # 8 items
    index = ItemIndex.build(torch.from_numpy(embeddings))  # a tensor works too
    queries = np.ones((2, 4), dtype=np.float32)
    for strategy in ("masked", "overfetch", "selector"):
        result = index.search(queries, 5, [{1, 2, 3, 4, 5}, set()], strategy=strategy)  # type: ignore[arg-type]
        assert sorted(result.ids[0][:3].tolist()) == [6, 7, 8]
        assert result.ids[0][3:].tolist() == [-1, -1] and np.isneginf(result.scores[0][3:]).all()
        assert [item for item, _ in result.row(0)] == result.ids[0][:3].tolist()
        assert len(result.row(1)) == 5
    assert index.search(queries, 20).ids.shape == (2, 20)  # k beyond the catalogue is padded


def test_hnsw_recall_with_and_without_exclusion(embeddings: np.ndarray) -> None:
    index = ItemIndex.from_config(embeddings, ServeConfig(index="hnsw", hnsw_m=16))
    assert index.kind == "hnsw" and index.hnsw_m == 16
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((100, DIM)).astype(np.float32)
    seen = seen_sets(rng, len(queries), 200)
    for exclude in (None, seen):
        result = index.search(queries, 10, exclude)
        ref_ids, _ = brute_force(queries, embeddings, 10, exclude)
        recall = np.mean(
            [len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(result.ids, ref_ids, strict=True)]
        )
        assert recall >= 0.9, recall
        if exclude is not None:
            assert all(not s & set(r.tolist()) for s, r in zip(seen, result.ids, strict=False))


def test_rejects_bad_shapes(flat: ItemIndex) -> None:
    with pytest.raises(ValueError, match="queries must be"):
        flat.search(np.zeros((2, DIM + 1), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="exclusion sets"):
        flat.search(np.zeros((2, DIM), dtype=np.float32), 5, [set()])
    with pytest.raises(ValueError, match="unknown index kind"):
        ItemIndex.build(np.zeros((3, 4), dtype=np.float32), "ivf")  # type: ignore[arg-type]


def test_masked_search_in_chunks_equals_brute_force(
    flat: ItemIndex, embeddings: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch scored a few queries at a time (the bound for large catalogues) gives the same
    answer, exclusions included."""
    monkeypatch.setattr("core.index.item_index.MASKED_SCORES", 4 * NUM_ITEMS)  # 4 queries per chunk
    rng = np.random.default_rng(11)
    queries = rng.standard_normal((30, DIM)).astype(np.float32)
    seen = seen_sets(rng, len(queries), 200)
    result = flat.search(queries, 10, seen, strategy="masked")
    assert_same_top_k(result, *brute_force(queries, embeddings, 10, seen), queries, embeddings)


def test_masked_search_needs_a_flat_index() -> None:
    embeddings = np.random.default_rng(2).standard_normal((9, 4)).astype(np.float32)
    hnsw = ItemIndex.build(embeddings, "hnsw", hnsw_m=4)
    with pytest.raises(ValueError, match="flat index"):
        hnsw.search(np.ones((1, 4), dtype=np.float32), 3, [{1}], strategy="masked")
    assert hnsw.search(np.ones((1, 4), dtype=np.float32), 3, [{1}]).ids.shape == (1, 3)  # auto: no masking
