"""Score any trained model over today's catalogue, so old and new versions meet on one holdout.

A version trained before the catalogue grew knows fewer items: items it never saw are dropped
from the histories it reads and get score -inf (it cannot recommend them; with pessimistic ties
a held-out new item then ranks last for it). Scores of models that know the whole catalogue are
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.data.split import EvalSet, LeaveOneOut
from core.evaluation import evaluate
from core.models.base import SequenceModel
from core.models.popularity import Popularity
from core.models.scorer import ModelScorer


class CatalogueScorer:
    """A ``core.evaluation`` scorer over ``num_items`` items for a model that may know fewer."""

    def __init__(self, model: SequenceModel, num_items: int, device: torch.device | str | None = None) -> None:
        self.inner = ModelScorer(model, device)
        self.known = model.num_items
        self.num_items = num_items
        self.name = model.kind

    @torch.no_grad()
    def score(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        known = [[item for item in seq if item <= self.known] or [] for seq in sequences]
        scores = self.inner.score(known)
        scores = torch.nan_to_num(scores, nan=float("-inf"))
        width = min(self.known, self.num_items) + 1
        out = torch.full((len(sequences), self.num_items + 1), float("-inf"), dtype=scores.dtype)
        out[:, :width] = scores[:, :width]
        return out


def holdout_metrics(
    model: SequenceModel, holdout: EvalSet, num_items: int, device: torch.device | str | None = None
) -> dict[str, float]:
    """Full-ranking metrics (seen items removed) of ``model`` on ``holdout``."""
    return evaluate(CatalogueScorer(model, num_items, device), holdout)


def popularity_metrics(folds: LeaveOneOut, holdout: EvalSet) -> dict[str, float]:
    """The popularity baseline (fit on the histories the holdout reads) on ``holdout``: the gate's floor."""
    return evaluate(Popularity(folds.num_items).fit(folds.train_for_test()), holdout)
