"""Tensor helpers shared by the sequence models: left padding, positions and attention masks.

Conventions: item ids are 1..num_items, 0 is padding, sequences are **left-padded** so the
most recent item is always the last column. Positions count from the first real item of a
row (0, 1, 2, ...), so extra left padding never changes a row's encoding, and a prefix is
encoded exactly as it is inside a longer sequence (what a causal model predicts from).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

PAD = 0


def left_pad(sequences: Sequence[Sequence[int]], keep_last: int, width: int | None = None) -> torch.Tensor:
    """Keep each sequence's ``keep_last`` most recent items and left-pad into ``[batch, width]``.

    ``width`` defaults to the longest kept sequence (at least 1).
    """
    kept = [list(seq)[-keep_last:] if keep_last > 0 else [] for seq in sequences]
    if width is None:
        width = max((len(seq) for seq in kept), default=0) or 1
    out = torch.zeros((len(kept), width), dtype=torch.long)
    for row, seq in enumerate(kept):
        if seq:
            seq = seq[-width:]
            out[row, width - len(seq) :] = torch.as_tensor(seq, dtype=torch.long)
    return out


def length_chunks(lengths: Sequence[int] | np.ndarray, size: int) -> list[np.ndarray]:
    """Row indices in chunks of ``size``, shortest rows first (equal lengths keep their order).

    A chunk left-padded only to its own longest row holds little padding, and since positions
    count from each row's first real item, trimming that padding leaves every row's result as is.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start : start + size] for start in range(0, len(order), size)]


def positions(inputs: torch.Tensor) -> torch.Tensor:
    """Position of every token counted from the row's first real token (padding gets 0)."""
    real = (inputs != PAD).long()
    return (real.cumsum(dim=1) - 1).clamp(min=0)


def attention_allowed(inputs: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean ``[batch, 1, L, L]`` mask, True where query i may attend to key j.

    Padding keys are never attended; with ``causal`` a query sees only keys at or before it.
    Every query may attend to itself, so padding rows stay finite (their output is ignored).
    """
    length = inputs.shape[1]
    allowed = (inputs != PAD)[:, None, None, :].expand(-1, 1, length, length)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril()
    eye = torch.eye(length, dtype=torch.bool, device=inputs.device)
    return allowed | eye


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a boolean mask into the additive float mask transformers' attention expects."""
    zeros = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return zeros.masked_fill(~allowed, torch.finfo(dtype).min)
