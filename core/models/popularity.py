"""Most-popular baseline: every user gets the globally most interacted items they have not seen."""

from __future__ import annotations

import torch


class Popularity:
    """Scores each item by its interaction count in the training sequences."""

    name = "popularity"

    def __init__(self, num_items: int) -> None:
        self.num_items = num_items
        self.counts = torch.zeros(num_items + 1, dtype=torch.float32)

    def fit(self, sequences: dict[int, list[int]] | list[list[int]]) -> Popularity:
        rows = sequences.values() if isinstance(sequences, dict) else sequences
        counts = torch.zeros(self.num_items + 1, dtype=torch.float64)
        for seq in rows:
            if seq:
                counts.index_add_(0, torch.as_tensor(seq, dtype=torch.long), torch.ones(len(seq), dtype=torch.float64))
        counts[0] = 0
        self.counts = counts.to(torch.float32)
        return self

    def score(self, sequences: list[list[int]]) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(sequences), -1).clone()
