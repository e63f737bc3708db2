"""Scoring a text map's candidates on validation users: their queries and NDCG@10 over all items."""

from __future__ import annotations

import torch

from core.data.split import EvalSet
from core.evaluation.metrics import metrics_from_ranks, pad_sequences, target_ranks
from core.models.base import SequenceModel
from core.models.sequences import left_pad, length_chunks


@torch.no_grad()
def queries(student: SequenceModel, inputs: list[list[int]], batch_size: int, device: torch.device) -> torch.Tensor:
    """``student.encode`` of each history (eval mode, the training flag restored), in order."""
    model_device = next(student.parameters()).device
    was_training = student.training
    student.eval()
    try:
        out: torch.Tensor | None = None
        for rows in length_chunks([len(seq) for seq in inputs], batch_size):
            batch = left_pad([inputs[i] for i in rows], student.history_len).to(model_device)
            states = student.encode(batch).to(device, torch.float32)
            if out is None:
                out = torch.zeros(len(inputs), states.shape[1], device=device)
            out[torch.as_tensor(rows, device=device)] = states
    finally:
        student.train(was_training)
    assert out is not None
    return out


@torch.no_grad()
def ndcg(
    queries: torch.Tensor, table: torch.Tensor, valid: EvalSet, batch_size: int, blocked: torch.Tensor | None = None
) -> float:
    """NDCG@10 over all items (but ``blocked`` rows), each user's seen items removed."""
    ranks = []
    for start in range(0, len(valid), batch_size):
        stop = start + batch_size
        scores = queries[start:stop] @ table.T
        if blocked is not None:
            scores[:, blocked] = float("-inf")
        targets = torch.as_tensor(valid.targets[start:stop], device=scores.device)
        ranks.append(target_ranks(scores, targets, pad_sequences(valid.inputs[start:stop])).cpu())
    return metrics_from_ranks(torch.cat(ranks), (10,))["NDCG@10"]
