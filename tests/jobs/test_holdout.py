"""Old and new versions meet on one holdout: a model that knows fewer items than today's catalogue."""

from __future__ import annotations

import torch

from core.data.split import EvalSet
from core.evaluation.evaluator import rank_targets
from core.models.scorer import ModelScorer
from core.models.student import Student
from core.settings import StudentConfig
from jobs.holdout import CatalogueScorer, holdout_metrics


def _student(items: int) -> Student:
    torch.manual_seed(0)
    return Student(StudentConfig(hidden=8, num_layers=1, num_heads=1, max_len=6), items).eval()


def test_unknown_items_are_left_out_of_histories_and_never_recommended() -> None:
    old = _student(10)
    scores = CatalogueScorer(old, num_items=12).score([[1, 11, 2], [12], [3, 4]])
    plain = ModelScorer(old).score([[1, 2], [], [3, 4]])
    assert scores.shape == (3, 13)
    assert torch.equal(scores[:, :11], plain)
    assert torch.isneginf(scores[:, 11:]).all()


def test_a_held_out_new_item_ranks_behind_every_item_the_old_model_can_score() -> None:
    holdout = EvalSet([1, 2], [[1, 2, 3], [4, 5]], [12, 6])
    ranks = rank_targets(CatalogueScorer(_student(10), num_items=12), holdout)
    assert ranks[0] == 8  # last: behind all 8 other unseen items (4..11)
    assert ranks[1] < 8
    metrics = holdout_metrics(_student(10), holdout, num_items=12)
    assert metrics["users"] == 2 and metrics["HR@5"] <= 0.5
