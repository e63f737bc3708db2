"""Brute-force reference top-K and a float-aware comparison with FAISS results."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from core.index import SearchResult

TIE = 1e-4  # scores closer than this may be ordered either way by float32 arithmetic


def brute_force(
    queries: np.ndarray, embeddings: np.ndarray, k: int, exclude: Sequence[Collection[int]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k item ids (1..n) and float64 scores of ``queries @ embeddings[1:].T``, seen removed."""
    scores = queries.astype(np.float64) @ embeddings.astype(np.float64).T
    scores[:, 0] = -np.inf
    for row, seen in enumerate(exclude or []):
        ids = [i for i in seen if 1 <= i < embeddings.shape[0]]
        scores[row, ids] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def assert_same_top_k(
    result: SearchResult, ref_ids: np.ndarray, ref_scores: np.ndarray, queries: np.ndarray, embeddings: np.ndarray
) -> None:
    """FAISS returned brute force's top-k: same ids in the same order (only items whose true
    scores are within TIE of each other may swap), and each returned score is the id's score."""
    assert result.ids.shape == ref_ids.shape
    true = queries.astype(np.float64) @ embeddings.astype(np.float64).T
    for row in range(len(ref_ids)):
        got, want = result.ids[row], ref_ids[row]
        finite = np.isfinite(ref_scores[row])
        assert (got[~finite] == -1).all(), f"row {row}: expected padding, got {got}"
        got, want = got[finite], want[finite]
        np.testing.assert_allclose(result.scores[row][finite], ref_scores[row][finite], atol=TIE, rtol=0)
        np.testing.assert_allclose(true[row, got], result.scores[row][finite], atol=TIE, rtol=0)
        assert len(set(got.tolist())) == len(got)
        for rank, (g, w) in enumerate(zip(got, want, strict=True)):
            if g != w:  # only a near-tie may swap
                assert abs(true[row, g] - true[row, w]) < TIE, f"row {row} rank {rank}: {g} != {w}"
