"""Metric tests against hand-computed values: ties, seen-item removal, K cut-offs."""

from __future__ import annotations

import math

import pytest
import torch

from core.data.split import EvalSet
from core.evaluation import evaluate, metrics_from_ranks, target_ranks
from core.evaluation.metrics import pad_sequences
from core.models.popularity import Popularity


def test_rank_counts_strictly_better_items():
    scores = torch.tensor([[0.0, 0.9, 0.1, 0.5, 0.3]])  # column 0 is padding
    assert target_ranks(scores, torch.tensor([3])).tolist() == [1]  # only item 1 is better
    assert target_ranks(scores, torch.tensor([1])).tolist() == [0]
    assert target_ranks(scores, torch.tensor([2])).tolist() == [3]


def test_ties_are_pessimistic():
    # every item scores the same: the target ranks behind all other candidates
    scores = torch.zeros(1, 6)
    assert target_ranks(scores, torch.tensor([2])).tolist() == [4]
    # a tie with one other item costs one place
    scores = torch.tensor([[0.0, 0.5, 0.5, 0.1]])
    assert target_ranks(scores, torch.tensor([2])).tolist() == [1]
    assert target_ranks(scores, torch.tensor([1])).tolist() == [1]


def test_seen_items_are_removed_but_target_stays():
    scores = torch.tensor([[0.0, 0.9, 0.8, 0.7, 0.1]])
    seen = torch.tensor([[1, 2, 0]])  # 0 is padding
    assert target_ranks(scores, torch.tensor([3]), seen).tolist() == [0]
    # the target itself in the history is never removed
    assert target_ranks(scores, torch.tensor([2]), torch.tensor([[1, 2]])).tolist() == [0]


def test_padding_column_is_never_a_candidate():
    scores = torch.tensor([[99.0, 0.2, 0.1]])
    assert target_ranks(scores, torch.tensor([1])).tolist() == [0]


def test_nan_target_ranks_last():
    scores = torch.tensor([[0.0, float("nan"), 0.2, 0.1]])
    assert target_ranks(scores, torch.tensor([1])).tolist() == [2]


def test_metrics_by_hand():
    ranks = torch.tensor([0, 1, 4, 9, 10])
    m = metrics_from_ranks(ranks, ks=(1, 5, 10))
    assert m["HR@1"] == pytest.approx(1 / 5)
    assert m["HR@5"] == pytest.approx(3 / 5)
    assert m["HR@10"] == pytest.approx(4 / 5)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(11)) / 5)
    assert m["MRR@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert m["MRR@10"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 10) / 5)


def test_popularity_baseline_end_to_end_by_hand():
    # counts: item1 3, item2 2, item3 1, item4 0
    model = Popularity(4).fit([[1, 2, 3], [1, 2], [1]])
    eval_set = EvalSet(users=[1, 2], inputs=[[1], [1, 2]], targets=[3, 4])
    # user 1: item 1 removed; candidates 2 (2.0), 3 (1.0), 4 (0) -> target 3 has rank 1
    # user 2: items 1, 2 removed; candidates 3 (1.0), 4 (0.0) -> target 4 has rank 1
    m = evaluate(model, eval_set, ks=(1, 2), batch_size=1)
    assert m["HR@1"] == 0.0 and m["HR@2"] == 1.0
    assert m["NDCG@2"] == pytest.approx(1 / math.log2(3))
    assert m["users"] == 2


def test_pad_sequences_right_pads():
    assert pad_sequences([[1, 2, 3], [4]]).tolist() == [[1, 2, 3], [4, 0, 0]]
