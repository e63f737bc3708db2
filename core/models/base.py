"""The contract every neural recommender in kdrec follows (teacher and student alike).

* ``encode(sequences)``: ``LongTensor[B, L]`` left-padded with 0 -> ``Tensor[B, D]``, the state
  that predicts the item after the last position. This is the FAISS query vector.
* ``item_embeddings()``: ``Tensor[num_items + 1, D]`` (row 0 is padding), the FAISS database.
* ``score(sequences)``: ``encode(sequences) @ item_embeddings().T`` -> ``Tensor[B, num_items + 1]``,
  so serving is maximum inner product search.
* ``loss(batch)``: the training loss of the model's own objective (causal next-item or cloze),
  softmax cross-entropy over all items.

Subclasses provide the token embedding and the transformer (``hidden_states``); objectives,
scoring and input preparation live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.models.batch import TrainBatch
from core.models.sequences import PAD, left_pad


class SequenceModel(nn.Module, ABC):
    """Items as tokens, a transformer over the sequence, dot-product scores over all items."""

    kind: str = "model"

    def __init__(self, num_items: int, max_len: int, objective: str, mask_prob: float = 0.2) -> None:
        super().__init__()
        if objective not in ("causal", "cloze"):
            raise ValueError(f"unknown objective {objective!r} (causal or cloze)")
        self.num_items = num_items
        self.max_len = max_len
        self.objective = objective
        self.mask_prob = mask_prob

    # --- what subclasses provide -------------------------------------------------------
    @abstractmethod
    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` left-padded ids (may hold the mask token) -> ``[B, L, D]`` states.

        Causal models attend only to earlier positions; cloze models attend both ways."""

    @abstractmethod
    def token_embeddings(self) -> torch.Tensor:
        """The whole input token table: ``[num_items + 1 (+1 mask token for cloze), D]``."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """JSON-able description from which ``from_spec`` rebuilds the same architecture."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: dict[str, Any]) -> SequenceModel:
        """The model ``spec()`` describes, freshly initialised (weights are loaded separately)."""

    # --- the contract --------------------------------------------------------------------
    @property
    def mask_token(self) -> int | None:
        return self.num_items + 1 if self.objective == "cloze" else None

    @property
    def history_len(self) -> int:
        """How many past items the model reads (cloze keeps one slot for the mask token)."""
        return self.max_len - 1 if self.objective == "cloze" else self.max_len

    def item_embeddings(self) -> torch.Tensor:
        return self.token_embeddings()[: self.num_items + 1]

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        inputs = sequences[:, -self.history_len :]
        if self.mask_token is not None:
            mask = torch.full_like(inputs[:, :1], self.mask_token)
            inputs = torch.cat([inputs, mask], dim=1)
        return self.last_state(inputs)

    def last_state(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` -> the last position's state ``[B, D]`` (what ``encode`` returns; a model may
        compute it more cheaply than all of ``hidden_states``, with the same result)."""
        return self.hidden_states(inputs)[:, -1]

    def score(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.encode(sequences) @ self.item_embeddings().T

    def loss(self, batch: TrainBatch) -> torch.Tensor:
        if self.objective == "cloze":
            return self.cloze_loss(batch.inputs)
        if batch.targets is None:
            raise ValueError("a causal model needs next-item targets in the batch")
        return self.causal_loss(batch.inputs, batch.targets)

    def prepare(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Lists of item ids (oldest first) -> the left-padded tensor ``encode`` reads."""
        return left_pad(sequences, self.history_len)

    # --- objectives ------------------------------------------------------------------------
    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every real item for ``[N, D]`` states; the padding column is -inf."""
        items = self.item_embeddings()
        pad = torch.zeros(items.shape[0], dtype=states.dtype, device=states.device)
        pad[PAD] = float("-inf")
        return torch.addmm(pad, states, items.T.to(states.dtype))  # one kernel, no copy

    def causal_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        states = self.hidden_states(inputs)
        where = targets != PAD
        return F.cross_entropy(self.logits(states[where]), targets[where])

    def cloze_loss(self, inputs: torch.Tensor) -> torch.Tensor:
        """BERT4Rec: replace a random ``mask_prob`` share of items by the mask token (at least
        one per sequence: its last item when none was drawn) and predict the masked items."""
        real = inputs != PAD
        masked = (torch.rand(inputs.shape, device=inputs.device) < self.mask_prob) & real
        # Every sequence gets at least one masked item: its last one when none was drawn.
        none = ~masked.any(dim=1) & real[:, -1]
        masked[none, -1] = True
        if self.mask_token is None:
            raise ValueError("cloze_loss needs the cloze objective's mask token")
        corrupted = inputs.masked_fill(masked, self.mask_token)
        states = self.hidden_states(corrupted)
        return F.cross_entropy(self.logits(states[masked]), inputs[masked])

    # --- sizes -------------------------------------------------------------------------------
    def parameter_counts(self) -> dict[str, int]:
        """Total parameters and those outside the item and position embedding tables."""
        total = sum(p.numel() for p in self.parameters())
        embedding = sum(p.numel() for name, p in self.named_parameters() if "embedding" in name.split(".")[0])
        return {"total": total, "non_embedding": total - embedding}
