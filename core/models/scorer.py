"""Make any SequenceModel a core.evaluation Scorer over ``list[list[int]]`` histories."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.models.base import SequenceModel


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ModelScorer:
    """Truncates each history to the model's input length, left-pads, scores in eval mode.

    Scores come back on the CPU as float32, ``[batch, num_items + 1]``.
    """

    def __init__(self, model: SequenceModel, device: torch.device | str | None = None) -> None:
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.name = model.kind

    @torch.no_grad()
    def encode(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model.encode(self.model.prepare(sequences).to(self.device)).float().cpu()
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def score(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            return self.model.score(self.model.prepare(sequences).to(self.device)).float().cpu()
        finally:
            self.model.train(was_training)
