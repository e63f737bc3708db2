"""Top-10 agreement with the teacher (bench.quality_agreement) on hand-made scorers."""

from __future__ import annotations

import torch

from bench.quality_agreement import agreement, top_lists
from core.data.split import EvalSet


class Fixed:
    """Scores every item by a fixed vector, whatever the history."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = torch.tensor(scores)

    def score(self, sequences: list[list[int]]) -> torch.Tensor:
        return self.scores.unsqueeze(0).repeat(len(sequences), 1)


def test_top_lists_leave_out_seen_items_and_padding() -> None:
    scorer = Fixed([9.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # item 0 is padding
    assert top_lists(scorer, [[1], [2, 3]], k=2).tolist() == [[2, 3], [1, 4]]


def test_overlap_and_the_teachers_hits_kept() -> None:
    test = EvalSet([1, 2], [[5], [5]], [1, 4])
    teacher = Fixed([0.0, 6.0, 5.0, 4.0, 3.0, 0.0])  # top 2 (k=2): items 1, 2
    same = Fixed([0.0, 6.0, 5.0, 1.0, 1.0, 0.0])
    other = Fixed([0.0, 1.0, 2.0, 6.0, 5.0, 0.0])  # top 2: items 3, 4
    result = agreement({"teacher": teacher, "same": same, "other": other}, "teacher", test, k=2)
    assert result["teacher"]["overlap"] == 1.0 and result["same"]["overlap"] == 1.0
    assert result["other"]["overlap"] == 0.0
    # the teacher hits user 1 (target 1), not user 2 (target 4): "same" keeps that hit, "other" does not
    assert result["same"]["teacher_hits_kept"] == 1.0 and result["other"]["teacher_hits_kept"] == 0.0
