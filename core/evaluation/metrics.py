"""Ranking metrics over the full catalogue, vectorised in torch.

Scores are a ``[batch, num_items + 1]`` tensor; column 0 is the padding id and never a
candidate. Items in the user's input sequence are removed from the candidates (the target
itself always stays). **Tie rule (pessimistic):** the target's rank counts every other
candidate whose score is greater than *or equal to* the target's, so a model that gives
many items the same score gains nothing from ties; a NaN target score ranks last.
"""

from __future__ import annotations

import torch

DEFAULT_KS = (5, 10, 20)


def pad_sequences(sequences: list[list[int]], pad: int = 0) -> torch.Tensor:
    """Right-pad lists of item ids into a ``[batch, max_len]`` long tensor."""
    width = max((len(seq) for seq in sequences), default=0) or 1
    out = torch.full((len(sequences), width), pad, dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, seen: torch.Tensor | None = None) -> torch.Tensor:
    """0-based rank of each target among all candidates (pessimistic ties).

    ``seen`` is a ``[batch, L]`` tensor of item ids to remove (0 = padding, ignored).
    """
    scores = scores.detach().to(torch.float32).clone()
    rows = torch.arange(scores.shape[0], device=scores.device)
    targets = targets.to(scores.device)
    target_scores = scores[rows, targets]
    target_scores = torch.where(torch.isnan(target_scores), torch.full_like(target_scores, -torch.inf), target_scores)
    scores = torch.nan_to_num(scores, nan=-torch.inf)
    if seen is not None:
        scores.scatter_(1, seen.to(scores.device), -torch.inf)
    scores[:, 0] = -torch.inf
    scores[rows, targets] = -torch.inf  # the target is compared with the others only
    better_or_equal = (scores >= target_scores.unsqueeze(1)).sum(dim=1)
    # A target at -inf ties with every removed item; rank it behind all real candidates.
    candidates = torch.isfinite(scores).sum(dim=1)
    return torch.where(torch.isinf(target_scores) & (target_scores < 0), candidates, better_or_equal)


def metrics_from_ranks(ranks: torch.Tensor, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """HR@K, NDCG@K and MRR@K averaged over users, from 0-based ranks."""
    ranks = ranks.to(torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = hit.double().mean().item()
        out[f"NDCG@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 2.0), 0.0).mean().item()
        out[f"MRR@{k}"] = torch.where(hit, 1.0 / (ranks + 1.0), 0.0).mean().item()
    return out
