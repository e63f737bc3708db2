"""Training windows cut from the leave-one-out training sequences, and seeded batching.

Causal models learn the next item at **every** position of a window (``targets[i]`` is the
item after ``inputs[i]``); cloze models get plain windows and mask them in their loss.
``mode="last"`` keeps one window per user, the most recent ``max_len + 1`` items (SASRec);
``mode="all"`` also cuts the older part of long sequences into further windows, so every
training item is a target once per epoch. Windows are deterministic (a teacher-score cache is
aligned with them); only their order is shuffled, by ``seed`` and epoch.

Each batch is trimmed to its longest window. With ``by_length`` (bucketing, as fairseq and
HF's ``group_by_length``), windows of similar length share a batch: the shuffled windows are
sorted by length within chunks of ``BUCKET_BATCHES`` batches, cut into batches, and the
batches shuffled, so sparse data pays for its real items rather than for padding. Trimming
left padding changes no row's loss (positions count from each row's first real item). Each
bucketed batch's loss is weighted by its targets over the epoch's mean targets per batch, so
the epoch's objective is the mean over targets, as with random batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal, Protocol

import numpy as np
import torch

from core.models.base import SequenceModel
from core.models.batch import TeacherTargets, TrainBatch
from core.models.sequences import length_chunks

WindowMode = Literal["last", "all"]
BUCKET_BATCHES = 50
"""Batches per chunk sorted by length: larger chunks pad less, smaller ones mix batches more."""


def _chunks(seq: list[int], size: int, mode: WindowMode) -> Iterator[list[int]]:
    """Windows of up to ``size`` items, newest first; consecutive windows share no targets."""
    end = len(seq)
    step = size - 1 if size > 1 else 1
    while end >= 2:
        yield seq[max(0, end - size) : end]
        if mode == "last":
            return
        end -= step


def causal_windows(
    sequences: Iterable[list[int]], max_len: int, mode: WindowMode = "last"
) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` and ``targets``, both ``[N, max_len]`` left-padded int64."""
    inputs, targets = [], []
    for seq in sequences:
        for window in _chunks(list(seq), max_len + 1, mode):
            row_in = np.zeros(max_len, dtype=np.int64)
            row_out = np.zeros(max_len, dtype=np.int64)
            n = len(window) - 1
            row_in[max_len - n :] = window[:-1]
            row_out[max_len - n :] = window[1:]
            inputs.append(row_in)
            targets.append(row_out)
    if not inputs:
        empty = np.zeros((0, max_len), dtype=np.int64)
        return empty, empty.copy()
    return np.stack(inputs), np.stack(targets)


def cloze_windows(sequences: Iterable[list[int]], max_len: int, mode: WindowMode = "last") -> np.ndarray:
    """``[N, max_len]`` left-padded windows of at least two items."""
    rows = []
    for seq in sequences:
        for window in _chunks(list(seq), max_len, mode):
            row = np.zeros(max_len, dtype=np.int64)
            row[max_len - len(window) :] = window
            rows.append(row)
    return np.stack(rows) if rows else np.zeros((0, max_len), dtype=np.int64)


class TeacherSource(Protocol):
    """Teacher targets aligned with the rows of a BatchSource (see core.distill.cache)."""

    def targets_for(self, rows: np.ndarray, width: int) -> TeacherTargets: ...


class BatchSource:
    """Shuffled mini-batches of fixed windows; each batch is trimmed to its longest row (see
    the module docstring for ``by_length``)."""

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray | None,
        batch_size: int,
        seed: int,
        teacher: TeacherSource | None = None,
    ) -> None:
        self.inputs = torch.as_tensor(inputs, dtype=torch.long)
        self.targets = None if targets is None else torch.as_tensor(targets, dtype=torch.long)
        self.batch_size = batch_size
        self.seed = seed
        self.teacher = teacher
        self.lengths = (self.inputs != 0).sum(dim=1)
        # Targets per row: next items for causal windows; real items (what cloze masks) otherwise.
        counted = self.targets if self.targets is not None else self.inputs
        self.row_targets = (counted != 0).sum(dim=1)
        self.mean_targets = max(float(self.row_targets.sum()) / max(len(self), 1), 1.0)

    def __len__(self) -> int:
        return (len(self.inputs) + self.batch_size - 1) // self.batch_size

    @property
    def num_rows(self) -> int:
        return len(self.inputs)

    def batch_rows(self, epoch: int, by_length: bool = True) -> list[np.ndarray]:
        """The rows of each batch of ``epoch``, in training order (every row exactly once)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.inputs))
        if not by_length:
            return [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        lengths, chunk, batches = self.lengths.numpy(), self.batch_size * BUCKET_BATCHES, []
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            batches += [rows[within] for within in length_chunks(lengths[rows], self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def epoch(self, epoch: int, by_length: bool = True) -> Iterator[TrainBatch]:
        for rows in self.batch_rows(epoch, by_length):
            rows = np.sort(rows)
            index = torch.as_tensor(rows)
            width = max(int(self.lengths[index].max()), 1)
            inputs = self.inputs[index, -width:]
            targets = None if self.targets is None else self.targets[index, -width:]
            teacher = None if self.teacher is None else self.teacher.targets_for(rows, width)
            # Random batches hold about the mean number of targets; bucketed ones do not, and a
            # batch mean would then weigh each target of a short-window batch far more.
            weight = float(self.row_targets[index].sum()) / self.mean_targets if by_length else 1.0
            yield TrainBatch(inputs, targets, teacher, weight)


def training_batches(
    model: SequenceModel,
    sequences: Iterable[list[int]],
    batch_size: int,
    seed: int,
    mode: WindowMode = "last",
    teacher: TeacherSource | None = None,
) -> BatchSource:
    """The batches a model's own objective trains on (causal targets or cloze windows)."""
    if model.objective == "cloze":
        return BatchSource(cloze_windows(sequences, model.max_len, mode), None, batch_size, seed, teacher)
    inputs, targets = causal_windows(sequences, model.max_len, mode)
    return BatchSource(inputs, targets, batch_size, seed, teacher)
