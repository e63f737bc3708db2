"""Item-embedding transfer: the student's item table starts from the teacher's.

The teacher's item representations (``item_embeddings()``: for a text-aware teacher, what the
LM read in each item's text plus what fine-tuning learnt) are projected to the student's width
by PCA over the real items (row 0, padding, stays zero), then rescaled so that the rows have
the norm of the student's own initialisation: the student's attention and layer norms start
in the range they were built for, and its learning rate means the same. The student stays a
plain ID model (same contract, same latency); only its starting point changes.
"""

from __future__ import annotations

import logging

import torch

from core.models.base import SequenceModel

log = logging.getLogger(__name__)


@torch.no_grad()
def pca_project(table: torch.Tensor, width: int) -> tuple[torch.Tensor, float]:
    """Rows of ``table`` (``[N, D]``, centred here) on their top-``width`` principal axes:
    ``[N, width]``, and the share of variance those axes keep."""
    if width > min(table.shape):
        raise ValueError(f"cannot project {tuple(table.shape)} onto {width} principal axes")
    data = table.to(torch.float64)
    centred = data - data.mean(dim=0, keepdim=True)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    kept = float((singular[:width] ** 2).sum() / (singular**2).sum().clamp(min=1e-12))
    return (centred @ right[:width].T).to(table.dtype), kept


@torch.no_grad()
def projected_item_table(teacher: SequenceModel, width: int, target_norm: float) -> tuple[torch.Tensor, float]:
    """The teacher's item table ``[num_items + 1, width]`` for a student: PCA, rows rescaled to
    a mean norm of ``target_norm``, padding row zero. Returns it and the variance kept."""
    items = teacher.item_embeddings().detach().to("cpu", torch.float32)[1:]
    projected, kept = pca_project(items, width)
    projected = projected * (target_norm / projected.norm(dim=1).mean().clamp(min=1e-8))
    return torch.cat([torch.zeros(1, width), projected]), kept


@torch.no_grad()
def transfer_item_embeddings(teacher: SequenceModel, student: SequenceModel) -> float:
    """Overwrite ``student``'s real-item rows with the teacher's projected table, keeping the
    mean row norm the student was initialised with; returns the variance the PCA kept."""
    if teacher.num_items != student.num_items:
        raise ValueError(f"teacher has {teacher.num_items} items, student {student.num_items}")
    weight = student.token_embeddings()
    rows = slice(1, student.num_items + 1)
    norm = float(weight[rows].norm(dim=1).mean())
    table, kept = projected_item_table(teacher, weight.shape[1], norm)
    weight[rows] = table[1:].to(weight.dtype, copy=False).to(weight.device)
    log.info(
        "student item embeddings from the teacher's (PCA %d -> %d, %.1f%% of the variance kept)",
        teacher.item_embeddings().shape[1],
        weight.shape[1],
        100 * kept,
    )
    return kept
