"""Batched full-ranking evaluation of any scorer on an evaluation set.

Histories are scored shortest first, so a model scorer pads each batch only to its own longest
history (each row's scores are unchanged: see core.models.sequences); ranks come back in the
evaluation set's order.
"""

from __future__ import annotations

import logging
from typing import Protocol

import torch
from tqdm import tqdm

from core.data.split import EvalSet
from core.evaluation.metrics import DEFAULT_KS, metrics_from_ranks, pad_sequences, target_ranks
from core.models.sequences import length_chunks

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """Anything that scores every item for a batch of histories: ``[batch, num_items + 1]``."""

    def score(self, sequences: list[list[int]]) -> torch.Tensor: ...


@torch.no_grad()
def rank_targets(
    scorer: Scorer, eval_set: EvalSet, batch_size: int = 256, exclude_seen: bool = True, progress: bool = False
) -> torch.Tensor:
    """0-based rank of every target in ``eval_set`` (see core.evaluation.metrics), in its order."""
    ranks = torch.zeros(len(eval_set), dtype=torch.long)
    chunks = length_chunks([len(seq) for seq in eval_set.inputs], batch_size)
    for rows in tqdm(chunks, desc="evaluate", disable=not progress, leave=False):
        inputs = [eval_set.inputs[i] for i in rows]
        targets = torch.as_tensor([eval_set.targets[i] for i in rows], dtype=torch.long)
        scores = scorer.score(inputs)
        seen = pad_sequences(inputs) if exclude_seen else None
        ranks[torch.as_tensor(rows)] = target_ranks(scores, targets, seen).cpu()
    return ranks


def evaluate(
    scorer: Scorer,
    eval_set: EvalSet,
    ks: tuple[int, ...] = DEFAULT_KS,
    batch_size: int = 256,
    exclude_seen: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """Full-ranking HR/NDCG/MRR at each K, seen items removed. Adds ``users``."""
    ranks = rank_targets(scorer, eval_set, batch_size, exclude_seen, progress)
    metrics = metrics_from_ranks(ranks, ks)
    metrics["users"] = float(len(ranks))
    return metrics
