"""What a training step receives: left-padded inputs, next-item targets, optional teacher targets."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass(frozen=True)
class TeacherTargets:
    """A teacher's softened predictions at each position of a batch, restricted to its top-k.

    ``indices``/``logits``: ``[B, L, k]`` the teacher's k best items and their raw scores.
    ``log_norm``: ``[B, L]`` the teacher's log-partition over all real items at ``temperature``
    (``logsumexp(scores / T)``), so the top-k probabilities are exact and the rest of the
    teacher's mass is known. ``present``: ``[B, L]`` where teacher targets exist.
    ``hidden``: optional ``[B, L, H]`` teacher sequence states for hidden-state alignment.
    """

    indices: torch.Tensor
    logits: torch.Tensor
    log_norm: torch.Tensor
    present: torch.Tensor
    temperature: float
    hidden: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> TeacherTargets:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device, non_blocking=True)
        return TeacherTargets(**moved)


@dataclass(frozen=True)
class TrainBatch:
    """``inputs``: ``[B, L]`` left-padded item ids. ``targets``: ``[B, L]`` the item that follows
    each position (0 where none), used by causal models; cloze models mask ``inputs`` themselves."""

    inputs: torch.Tensor
    targets: torch.Tensor | None = None
    teacher: TeacherTargets | None = None
    weight: float = 1.0
    """Multiplies the batch's mean loss: with length bucketing, its targets over the epoch's mean
    targets per batch, so every target weighs the same whatever batch it falls in."""

    def to(self, device: torch.device | str) -> TrainBatch:
        return replace(
            self,
            inputs=self.inputs.to(device, non_blocking=True),
            targets=None if self.targets is None else self.targets.to(device, non_blocking=True),
            teacher=None if self.teacher is None else self.teacher.to(device),
        )
