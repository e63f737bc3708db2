"""Scoring with an item table that goes beyond what a model learnt: its trained rows, then the
text map's vectors for the items it never saw (bench.cold_start)."""

from __future__ import annotations

import torch

from core.distill.text_map import TextMap
from core.models.base import SequenceModel


class TableScorer:
    """Scores every item of the whole catalogue with ``model``'s session vector against
    ``table`` (``[num_items + 1, D]``); items the model never learnt are left out of its input.
    Rows marked in ``blocked`` score -inf (an index without them)."""

    def __init__(self, model: SequenceModel, table: torch.Tensor, blocked: torch.Tensor | None = None) -> None:
        self.model, self.table, self.blocked = model.eval(), table, blocked

    @torch.no_grad()
    def score(self, sequences: list[list[int]]) -> torch.Tensor:
        known = [[i for i in seq if i <= self.model.num_items] for seq in sequences]
        scores = self.model.encode(self.model.prepare(known)).float() @ self.table.T
        if self.blocked is not None:
            scores[:, self.blocked] = float("-inf")
        return scores


def with_text_items(model: SequenceModel, text_map: TextMap, encodings: torch.Tensor) -> torch.Tensor:
    """The model's learnt item table, then the text map's vectors for the items after it."""
    learnt = model.item_embeddings().detach().float()
    return torch.cat([learnt, text_map(encodings[model.num_items + 1 :]).float()])
