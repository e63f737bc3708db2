"""Session -> vector -> top-K: recommendations for any item history from any session encoder.

The encoder is anything with ``encode(LongTensor[B, L]) -> Tensor[B, D]`` taking histories
left-padded with 0 (the model contract in ``core.models.base``), or a plain callable doing the
same; nothing here depends on a concrete model class. Any history works, including a user the
model never saw: only the items matter. Only items the encoder knows go into its input: ids
1..``encoder.num_items`` when the encoder has that attribute (the models do), else the index's
1..num_items. Items added to the catalogue after this model version was trained are left out:
the index may already serve them from their text alone (``ItemIndex.with_items``), so they are
recommendable at once, but they shape no session until a refit learns them.
An empty history is encoded as a row of padding (the models keep such rows finite).

Seen items (the whole given history) are excluded from the results by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from core.index.item_index import ItemIndex, SearchResult, Strategy, as_float32
from core.models.sequences import left_pad as pad_sequences
from core.models.sequences import length_chunks

DEFAULT_MAX_LEN = 200


@runtime_checkable
class SessionEncoder(Protocol):
    def encode(self, sequences: torch.Tensor) -> torch.Tensor: ...


Encoder = SessionEncoder | Callable[[torch.Tensor], torch.Tensor]


def left_pad(histories: Sequence[Sequence[int]], max_len: int) -> torch.Tensor:
    """Each history's last ``max_len`` items, left-padded with 0 into ``LongTensor[B, width]``
    (the models' own padding, ``core.models.sequences.left_pad``)."""
    return pad_sequences(histories, max_len)


class SessionRecommender:
    """Encodes histories with ``encoder`` and searches ``index`` for the top-K unseen items."""

    def __init__(
        self,
        encoder: Encoder,
        index: ItemIndex,
        *,
        max_len: int | None = None,
        batch_size: int = 64,
        device: torch.device | str | None = None,
    ) -> None:
        self.encoder = encoder
        self.index = index
        self.max_len = int(max_len or getattr(encoder, "max_len", None) or DEFAULT_MAX_LEN)
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else _module_device(encoder)

    def _encode(self, inputs: torch.Tensor) -> torch.Tensor:
        encode = self.encoder.encode if isinstance(self.encoder, SessionEncoder) else self.encoder
        return encode(inputs.to(self.device))

    def vectors(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """``float32 [B, D]`` session vectors (inference mode; a module in training mode is
        switched to eval for the call and back)."""
        module = self.encoder if isinstance(self.encoder, torch.nn.Module) else None
        was_training = bool(module is not None and module.training)
        if module is not None and was_training:
            module.eval()
        limit = self.known_items  # once per call: this is the serving hot path
        known = [[int(item) for item in history if 1 <= int(item) <= limit][-self.max_len :] for history in histories]
        # Similar lengths together: each chunk is padded only to its own longest history, and a
        # chunk of full-length histories needs no attention mask at all.
        out = np.zeros((len(known), self.index.dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                for rows in length_chunks([len(history) for history in known], self.batch_size):
                    out[rows] = as_float32(self._encode(left_pad([known[i] for i in rows], self.max_len)))
        finally:
            if module is not None and was_training:
                module.train()
        return out

    @property
    def known_items(self) -> int:
        """Ids 1..this go into the encoder: the encoder's ``num_items``, else the index's."""
        learnt = getattr(self.encoder, "num_items", None)
        return learnt if isinstance(learnt, int) else self.index.num_items

    def recommend(
        self, histories: Sequence[Sequence[int]], k: int, *, exclude_seen: bool = True, strategy: Strategy = "auto"
    ) -> SearchResult:
        """Top-``k`` ``(ids, scores)`` per history, the history's own items excluded by default."""
        queries = self.vectors(histories)
        exclude = [set(history) for history in histories] if exclude_seen else None
        return self.index.search(queries, k, exclude, strategy)

    def recommend_one(self, history: Sequence[int], k: int, exclude_seen: bool = True) -> list[tuple[int, float]]:
        """``[(item_id, score), ...]`` best first for one history."""
        return self.recommend([history], k, exclude_seen=exclude_seen).row(0)


def _module_device(encoder: object) -> torch.device:
    if isinstance(encoder, torch.nn.Module):
        for parameter in encoder.parameters():
            return parameter.device
    return torch.device("cpu")
