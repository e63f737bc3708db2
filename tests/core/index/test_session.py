"""Session -> vector -> top-K with any encoder: a toy one and the real student model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.index import ItemIndex, SessionRecommender, left_pad
from core.models.student import Student
from core.settings import StudentConfig
from tests.core.index.helpers import assert_same_top_k, brute_force

NUM_ITEMS, DIM = 200, 8


class MeanEncoder(nn.Module):
    """Mean of the item embeddings of the real (non-padding) positions, weighted to the end."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.items = nn.Embedding(NUM_ITEMS + 1, DIM, padding_idx=0)
        self.drop = nn.Dropout(0.5)
        self.max_len = 6
        self.calls: list[torch.Tensor] = []

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        self.calls.append(sequences.clone())
        real = (sequences != 0).float()
        weights = real * real.cumsum(1)  # 1, 2, 3... from the first real item: padding-invariant
        summed = (self.drop(self.items(sequences)) * weights[..., None]).sum(1)
        return summed / weights.sum(1, keepdim=True).clamp(min=1)


def test_left_pad_keeps_most_recent_items() -> None:
    padded = left_pad([[1, 2, 3, 4], [5], []], max_len=3)
    assert padded.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]
    assert left_pad([], 3).shape == (0, 1)


def test_recommendations_equal_brute_force_and_exclude_history() -> None:
    encoder = MeanEncoder()
    encoder.train()  # SessionRecommender must switch dropout off for the call, then back on
    embeddings = encoder.items.weight.detach().numpy()
    recommender = SessionRecommender(encoder, ItemIndex.build(encoder.items.weight), batch_size=2)
    histories = [[3, 9, 27, 81, 5, 6, 7, 8], [150], [], [12, 12, 12], [4, 999, 0, 5]]
    result = recommender.recommend(histories, k=10)
    assert encoder.training
    assert all(call.shape[1] <= 6 for call in encoder.calls)  # max_len read from the encoder
    rows = [row.tolist() for call in encoder.calls for row in call]
    assert [27, 81, 5, 6, 7, 8] in rows and [150] in rows
    assert [0, 4, 5] in rows  # ids outside the index (999, 0) are left out
    # histories are encoded shortest first, so each call is padded only to its own longest
    assert [call.shape[1] for call in encoder.calls] == [1, 3, 6]

    with torch.no_grad():
        encoder.eval()
        vectors = encoder.encode(left_pad([[i for i in h if 1 <= i <= NUM_ITEMS] for h in histories], 6))
    np.testing.assert_allclose(recommender.vectors(histories), vectors.numpy(), rtol=1e-6, atol=1e-6)
    queries = vectors.numpy()
    assert_same_top_k(result, *brute_force(queries, embeddings, 10, [set(h) for h in histories]), queries, embeddings)
    for history, row in zip(histories, result.rows(), strict=False):
        assert len(row) == 10 and not set(history) & {item for item, _ in row}
    assert np.isfinite(result.scores[2]).all()  # an empty history still gets recommendations

    kept = recommender.recommend_one([3, 9], k=5, exclude_seen=False)
    assert len(kept) == 5 and [s for _, s in kept] == sorted((s for _, s in kept), reverse=True)


def test_plain_callable_encoder() -> None:
    table = torch.randn(NUM_ITEMS + 1, DIM, generator=torch.Generator().manual_seed(1))
    recommender = SessionRecommender(lambda seqs: table[seqs[:, -1]], ItemIndex.build(table), max_len=4)
    result = recommender.recommend([[10, 20], [30]], k=3)
    expected = brute_force(table[[20, 30]].numpy(), table.numpy(), 3, [{10, 20}, {30}])
    assert_same_top_k(result, *expected, table[[20, 30]].numpy(), table.numpy())


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_student_model_through_faiss_matches_its_own_scores(kind: str) -> None:
    torch.manual_seed(0)
    student = Student(StudentConfig(hidden=16, num_layers=1, num_heads=2, max_len=20), num_items=300).eval()
    index = ItemIndex.build(student.item_embeddings(), kind)  # type: ignore[arg-type]
    recommender = SessionRecommender(student, index)
    histories = [[1, 2, 3], [250, 17, 17, 90, 4] * 6, [299]]  # 30 items > max_len 20
    result = recommender.recommend(histories, k=10)
    with torch.no_grad():
        scores = student.score(left_pad(histories, 20)).numpy().astype(np.float64)
    for row, history in enumerate(histories):
        scores[row, 0] = -np.inf
        scores[row, list(set(history))] = -np.inf
        expected = np.argsort(-scores[row], kind="stable")[:10]
        if kind == "flat":
            assert result.ids[row].tolist() == expected.tolist()
            np.testing.assert_allclose(result.scores[row], scores[row, expected], rtol=1e-5, atol=1e-5)
        else:  # 300 items, HNSW with efSearch 128: essentially exact
            assert len(set(result.ids[row].tolist()) & set(expected.tolist())) >= 9
