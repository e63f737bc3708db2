"""The teacher's state at every position of a (possibly longer) student window.

The state at position i predicts the item after ``inputs[:, i]`` from at most the teacher's own
input length of history. A causal teacher gets all positions of a window in one pass; for
windows longer than its ``max_len`` it runs overlapping windows with ``stride`` new positions
each, so every position sees at least ``max_len - stride`` items of context (exact when the
window fits). Those windows are laid out from the right end, so extra left padding changes no
row's states (a batch may be trimmed to its longest row). A cloze teacher needs one pass per
position (history + mask token).
"""

from __future__ import annotations

import torch

from core.models.base import SequenceModel
from core.models.sequences import PAD


@torch.no_grad()
def teacher_states(teacher: SequenceModel, inputs: torch.Tensor, stride: int | None = None) -> torch.Tensor:
    """``[B, L]`` left-padded inputs -> ``[B, L, H]`` teacher states (padding rows unspecified)."""
    length = inputs.shape[1]
    if teacher.objective == "cloze":
        width = teacher.item_embeddings().shape[1]
        out = torch.zeros((inputs.shape[0], length, width), device=inputs.device)
        for end in range(1, length + 1):
            if not bool((inputs[:, end - 1] == PAD).all()):
                out[:, end - 1] = teacher.encode(inputs[:, :end]).float()
        return out
    window = teacher.max_len
    if length <= window:
        return teacher.hidden_states(inputs)
    stride = max(1, min(stride or window // 2, window))
    states_out: torch.Tensor | None = None
    end = length
    while True:
        # The window ending at ``end`` gives its last ``stride`` positions, or all of them once
        # it reaches the row's start (from there on every position sees its whole history).
        start, new = max(0, end - window), stride if end > window else end
        states = teacher.hidden_states(inputs[:, start:end])
        if states_out is None:
            states_out = states.new_empty((inputs.shape[0], length, states.shape[-1]))
        states_out[:, end - new : end] = states[:, states.shape[1] - new :]
        if end <= window:
            return states_out
        end -= stride
