"""Teacher scores computed once: top-k logits per training position, aligned with the windows.

A teacher forward pass per student step costs ~8x a student step on CPU, so the teacher scores
every target position of the student's (fixed) training windows once. Per position the cache
keeps the k best items (ids and raw scores, float16) and ``logsumexp(scores / T)`` over all
items for each requested temperature (so top-k probabilities and the remaining mass are exact,
see core.distill.loss.kl_topk), optionally the teacher state for hidden alignment.
Rows of window w are ``offsets[w]:offsets[w + 1]``: its last positions that have a target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from core.distill.teacher_states import teacher_states
from core.models.base import SequenceModel
from core.models.batch import TeacherTargets
from core.models.sequences import PAD, length_chunks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherCache:
    offsets: torch.Tensor  # [N + 1] int64
    indices: torch.Tensor  # [M, k] int16 or int32
    logits: torch.Tensor  # [M, k] float16
    log_norms: torch.Tensor  # [M, len(temperatures)] float32
    temperatures: tuple[float, ...]
    temperature: float
    hidden: torch.Tensor | None = None  # [M, H] float16

    @property
    def num_windows(self) -> int:
        return len(self.offsets) - 1

    @property
    def top_k(self) -> int:
        return int(self.indices.shape[1])

    def at_temperature(self, temperature: float) -> TeacherCache:
        if not any(abs(t - temperature) < 1e-9 for t in self.temperatures):
            raise ValueError(f"cache holds temperatures {self.temperatures}, not {temperature}")
        return replace(self, temperature=temperature)

    def targets_for(self, rows: np.ndarray, width: int) -> TeacherTargets:
        """Teacher targets for windows ``rows`` trimmed to their last ``width`` positions."""
        column = next(i for i, t in enumerate(self.temperatures) if abs(t - self.temperature) < 1e-9)
        batch, k = len(rows), self.top_k
        rows = np.asarray(rows, dtype=np.int64)
        offsets = self.offsets.numpy()
        starts, counts = offsets[rows], offsets[rows + 1] - offsets[rows]
        # One gather for the whole batch: cache row -> (batch row, position), right-aligned.
        owner = np.repeat(np.arange(batch), counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        source = torch.as_tensor(np.repeat(starts, counts) + within)
        b, pos = torch.as_tensor(owner), torch.as_tensor(width - np.repeat(counts, counts) + within)
        indices = torch.zeros((batch, width, k), dtype=torch.long)
        logits = torch.zeros((batch, width, k), dtype=torch.float32)
        log_norm = torch.zeros((batch, width), dtype=torch.float32)
        present = torch.zeros((batch, width), dtype=torch.bool)
        indices[b, pos] = self.indices[source].long()
        logits[b, pos] = self.logits[source].float()
        log_norm[b, pos] = self.log_norms[source, column]
        present[b, pos] = True
        hidden = None
        if self.hidden is not None:
            hidden = torch.zeros((batch, width, self.hidden.shape[1]))
            hidden[b, pos] = self.hidden[source].float()
        return TeacherTargets(indices, logits, log_norm, present, self.temperature, hidden)

    def save(self, path: str | Path) -> None:
        tensors = {"offsets": self.offsets, "indices": self.indices, "logits": self.logits, "log_norms": self.log_norms}
        if self.hidden is not None:
            tensors["hidden"] = self.hidden
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(tmp),
            metadata={"temperatures": ",".join(repr(t) for t in self.temperatures)},
        )
        tmp.replace(path)

    @staticmethod
    def load(path: str | Path, temperature: float | None = None) -> TeacherCache:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            temps = tuple(float(t) for t in handle.metadata()["temperatures"].split(","))
        tensors = load_file(str(path))
        cache = TeacherCache(
            tensors["offsets"],
            tensors["indices"],
            tensors["logits"],
            tensors["log_norms"],
            temps,
            temps[0],
            tensors.get("hidden"),
        )
        return cache.at_temperature(temperature) if temperature is not None else cache


@torch.no_grad()
def build_teacher_cache(
    teacher: SequenceModel,
    inputs: np.ndarray,
    targets: np.ndarray,
    top_k: int,
    temperatures: Sequence[float],
    last: int | None = None,
    stride: int | None = None,
    keep_hidden: bool = False,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> TeacherCache:
    """Score the teacher at the target positions of each window (its ``last`` ones when given).

    ``inputs``/``targets`` are the student's causal windows (core.training.causal_windows).
    """
    teacher = teacher.to(device).eval()
    counts = (targets != PAD).sum(axis=1)
    if last is not None:
        counts = np.minimum(counts, last)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total, k = int(offsets[-1]), min(top_k, teacher.num_items)
    index_dtype = torch.int16 if teacher.num_items < 2**15 else torch.int32
    indices = torch.zeros((total, k), dtype=index_dtype)
    logits = torch.zeros((total, k), dtype=torch.float16)
    log_norms = torch.zeros((total, len(temperatures)), dtype=torch.float32)
    width = teacher.item_embeddings().shape[1]
    hidden = torch.zeros((total, width), dtype=torch.float16) if keep_hidden else None
    lengths = (inputs != PAD).sum(axis=1)
    # Similar lengths together, each batch trimmed to its longest window: little padding, and the
    # same states as at full width (teacher_states does not depend on left padding).
    chunks = length_chunks(lengths, batch_size)
    for rows in tqdm(chunks, desc="teacher scores", disable=not progress, leave=False):
        span = max(int(lengths[rows].max()), 1)
        x = torch.as_tensor(inputs[rows, -span:], device=device)
        states = teacher_states(teacher, x, stride)
        for b, row in enumerate(rows):
            n = int(counts[row])
            if n == 0:
                continue
            state = states[b, span - n :].float()
            scores = teacher.logits(state).float()
            top = scores.topk(k, dim=-1)
            lo, hi = int(offsets[row]), int(offsets[row + 1])
            indices[lo:hi] = top.indices.to(index_dtype).cpu()
            logits[lo:hi] = top.values.half().cpu()
            log_norms[lo:hi] = torch.stack([(scores / t).logsumexp(dim=-1) for t in temperatures], 1).cpu()
            if hidden is not None:
                hidden[lo:hi] = state.half().cpu()
    log.info("teacher cache: %d windows, %d positions, top-%d, T=%s", len(counts), total, k, tuple(temperatures))
    return TeacherCache(
        torch.as_tensor(offsets),
        indices,
        logits,
        log_norms,
        tuple(float(t) for t in temperatures),
        float(temperatures[0]),
        hidden,
    )
