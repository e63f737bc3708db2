"""Metrics broken down by how popular the target item is in training: head, torso, tail.

Users are ordered by the training count of their target item (most frequent first; ties
broken by user order, so the split is deterministic) and cut into buckets of equal users.
The report then shows where a model wins: a text-aware teacher and KD should help most on
the tail, where an ID model has seen the target a handful of times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.evaluation.metrics import DEFAULT_KS, metrics_from_ranks

BUCKETS = ("head", "torso", "tail")


@dataclass(frozen=True)
class Buckets:
    """Row indices of an evaluation set per bucket, and the target counts each covers."""

    rows: dict[str, np.ndarray]
    count_range: dict[str, tuple[int, int]]
    """(min, max) training count of the targets in each bucket."""


def popularity_buckets(targets: Sequence[int], counts: np.ndarray, names: Sequence[str] = BUCKETS) -> Buckets:
    """Split rows into ``len(names)`` buckets of equal size by their target's training count."""
    target_counts = counts[np.asarray(targets, dtype=np.int64)]
    order = np.argsort(-target_counts, kind="stable")
    parts = np.array_split(order, len(names))
    rows = {name: np.sort(part) for name, part in zip(names, parts, strict=True)}
    ranges = {
        name: (int(target_counts[part].min()), int(target_counts[part].max())) if len(part) else (0, 0)
        for name, part in rows.items()
    }
    return Buckets(rows, ranges)


def metrics_by_bucket(
    ranks: torch.Tensor, buckets: Buckets, ks: tuple[int, ...] = DEFAULT_KS
) -> dict[str, dict[str, float]]:
    """``metrics_from_ranks`` on each bucket's rows, with ``users`` and the count range."""
    out: dict[str, dict[str, float]] = {}
    for name, rows in buckets.rows.items():
        picked = ranks[torch.as_tensor(rows, dtype=torch.long)]
        metrics = metrics_from_ranks(picked, ks) if len(rows) else {}
        low, high = buckets.count_range[name]
        out[name] = {**metrics, "users": float(len(rows)), "min_count": float(low), "max_count": float(high)}
    return out
