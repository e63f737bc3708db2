"""Distillation losses and the student objective that combines them with cross-entropy.

Top-k support (``kl_topk``): the cache keeps the teacher's k best items per position plus its
log-partition over all items at temperature T. The teacher distribution is then collapsed,
exactly, to k + 1 outcomes (its top-k items and "any other item", whose mass is 1 minus the
top-k mass), and so is the student's (its probabilities of the same k items and the rest).
KL over these k + 1 outcomes is exact on the teacher's top-k, never over-penalises the tail,
is a lower bound of the full KL (it groups the tail), and is zero when the student equals
the teacher. ``kl_full`` is the exact KL over all items for teachers run every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.distill.teacher_states import teacher_states
from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.sequences import PAD
from core.settings import DistillConfig

EPS = 1e-12


def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows of KL(softmax(t/T) || softmax(s/T)); -inf columns (padding) are skipped."""
    log_q = (student_logits.float() / temperature).log_softmax(dim=-1)
    log_p = (teacher_logits.float() / temperature).log_softmax(dim=-1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum(dim=-1).mean()


def kl_topk(
    student_logits: torch.Tensor,
    indices: torch.Tensor,
    teacher_logits: torch.Tensor,
    teacher_log_norm: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Mean over rows of KL over the teacher's top-k items plus one bucket for all others.

    ``teacher_log_norm`` is ``logsumexp(all teacher scores / T)`` for each row.
    """
    log_q = (student_logits.float() / temperature).log_softmax(dim=-1)
    log_q_top = log_q.gather(1, indices.long())
    log_p_top = teacher_logits.float() / temperature - teacher_log_norm.float().unsqueeze(1)
    p_top = log_p_top.exp()
    p_tail = (1.0 - p_top.sum(dim=1)).clamp(min=0.0)
    q_tail = (1.0 - log_q_top.exp().sum(dim=1)).clamp(min=EPS)
    top = (p_top * (log_p_top - log_q_top)).sum(dim=1)
    tail = p_tail * (p_tail.clamp(min=EPS).log() - q_tail.log())
    return (top + tail).mean()


class DistillObjective(nn.Module):
    """The student's training loss under distillation (the student is a submodule, the
    teacher is not: it is frozen, in eval mode, and never receives gradients).

    Teacher targets come from the batch (a top-k cache) or, when ``teacher`` is given and the
    batch has none, from a teacher forward pass on every step (exact full KL).
    """

    def __init__(
        self,
        student: SequenceModel,
        config: DistillConfig,
        teacher: SequenceModel | None = None,
        teacher_hidden: int | None = None,
        stride: int | None = None,
    ) -> None:
        super().__init__()
        if student.objective != "causal":
            raise ValueError("distillation trains a causal student (next item at every position)")
        self.student = student
        self.config = config
        self.stride = stride
        self._teacher = [teacher] if teacher is not None else []  # a list: not a submodule
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self.projection = None
        if config.hidden_weight > 0:
            if teacher_hidden is None:
                raise ValueError("hidden_weight > 0 needs the teacher's hidden size")
            width = student.item_embeddings().shape[1]
            self.projection = nn.Linear(width, teacher_hidden)

    @property
    def teacher(self) -> SequenceModel | None:
        return self._teacher[0] if self._teacher else None

    def train(self, mode: bool = True) -> DistillObjective:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, batch: TrainBatch) -> torch.Tensor:
        if batch.targets is None:
            raise ValueError("distillation needs next-item targets in the batch")
        alpha, temperature = self.config.alpha, self.config.temperature
        states = self.student.hidden_states(batch.inputs)
        where = batch.targets != PAD
        logits = self.student.logits(states[where])
        loss = alpha * F.cross_entropy(logits, batch.targets[where]) if alpha > 0 else logits.new_zeros(())
        if alpha >= 1.0 and self.projection is None:
            return loss
        cached = batch.teacher
        if cached is not None:
            if abs(cached.temperature - temperature) > 1e-6:
                raise ValueError(f"teacher cache is at T={cached.temperature}, config wants T={temperature}")
            chosen = cached.present[where]
            sel = where & cached.present
            rows = logits if bool(chosen.all()) else logits[chosen]  # usually every position: no copy
            kl = (
                kl_topk(rows, cached.indices[sel], cached.logits[sel], cached.log_norm[sel], temperature)
                if bool(chosen.any())
                else logits.new_zeros(())
            )
            teacher_hidden = cached.hidden[sel] if cached.hidden is not None else None
        elif self.teacher is not None:
            chosen = torch.ones(int(where.sum()), dtype=torch.bool, device=logits.device)
            with torch.no_grad():
                t_states = teacher_states(self.teacher, batch.inputs, self.stride)[where].float()
                t_logits = self.teacher.logits(t_states)
            kl = kl_full(logits, t_logits, temperature)
            teacher_hidden = t_states
        else:
            raise ValueError("distillation needs a teacher or cached teacher targets in the batch")
        loss = loss + (1.0 - alpha) * temperature**2 * kl
        if self.projection is not None:
            if teacher_hidden is None:
                raise ValueError("hidden_weight > 0 but the teacher cache holds no hidden states")
            aligned = self.projection(states[where][chosen])
            loss = (
                loss
                + self.config.hidden_weight
                * (1 - F.cosine_similarity(aligned.float(), teacher_hidden.float(), dim=-1)).mean()
            )
        return loss
