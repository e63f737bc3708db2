"""Fitting a student's text map, every choice made by validation.

A share of the seen items is held out and their rows replaced by mapped vectors. A candidate's
score is the NDCG@10 of the validation users whose target is a held-out item (whom the map must
serve), among the candidates that keep the NDCG@10 of a sample of the other users within
``WARM_TOLERANCE`` of an index without the held-out items (new vectors must not crowd out good
recommendations); when none does, the one that costs them least wins. Candidates: ridge fits
(penalty, minimum count of an item to fit on, optional rescaling of the rows to a quantile of the
trained rows' norms: the regression shrinks uncertain items to a small norm that never wins at
maximum inner product), then, from the best ridge fit, epochs of ranking training (ranking.py),
stopped when validation stops improving; then blends of that linear map with text neighbours
(neighbours.py: the trained rows of the known items whose text is nearest). The winner is
refitted on every item.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from core.data.split import EvalSet
from core.distill.text_map import neighbours
from core.distill.text_map.artifact import TextMap, rescaled
from core.distill.text_map.neighbours import Candidate, Neighbours
from core.distill.text_map.ranking import Positions, ranking_epochs, training_positions
from core.distill.text_map.ridge import fit_ridge
from core.distill.text_map.validation import ndcg, queries
from core.models.base import SequenceModel

log = logging.getLogger(__name__)

DEFAULT_RIDGE = 100.0
DEFAULT_MIN_COUNT = 1
MIN_VALID_USERS = 20
WARM_TOLERANCE = 0.02
"""How much lower the other validation users' NDCG@10 may be with the mapped vectors in the index."""
WARM_SAMPLE = 2000
"""Validation users whose target is not held out, sampled to estimate the map's cost to them."""
MAX_RANKING_EPOCHS = 30
RANKING_PATIENCE = 2

Counts = np.ndarray | torch.Tensor | Sequence[int]


@dataclass(frozen=True, eq=False)
class _Fitting:
    """What every candidate fit reads: the student's table, the encodings, the counts and the
    student's training positions (None: no ranking candidates)."""

    table: torch.Tensor
    encodings: torch.Tensor
    counts: np.ndarray
    cap: int | None
    positions: Positions | None

    def fit(self, items: np.ndarray, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(items, device=self.table.device)
        counts = self.counts[items]
        weights = np.ones(len(items)) if self.cap is None else np.minimum(counts, self.cap) / self.cap
        return fit_ridge(self.encodings[rows], self.table[rows], torch.as_tensor(weights), ridge)

    def ranking(
        self, items: np.ndarray, start: tuple[torch.Tensor, torch.Tensor], blocked: torch.Tensor | None, seed: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]] | None:
        """Epochs of ranking training on the positions whose target is one of ``items``."""
        if self.positions is None:
            return None
        keep = torch.zeros(self.table.shape[0], dtype=torch.bool)
        keep[torch.as_tensor(items)] = True
        positions = self.positions.where(keep)
        if len(positions) == 0:
            return None
        return ranking_epochs(positions, self.table, self.encodings, *start, blocked=blocked, seed=seed)


@dataclass(frozen=True)
class _Choice:
    ridge: float
    min_count: int
    norm_quantile: float | None
    score: float | None
    epochs: int = 0
    neighbours: Candidate | None = None
    """The text neighbours blended with the linear map (None: the linear map alone)."""


def _norm_at(fitting: _Fitting, items: np.ndarray, quantile: float | None) -> float | None:
    """The ``quantile`` of the trained rows' norms over ``items`` (None: no rescaling)."""
    if quantile is None:
        return None
    rows = torch.as_tensor(items, device=fitting.table.device)
    return float(torch.quantile(fitting.table[rows].norm(dim=1).double(), quantile))


def _choose(
    fitting: _Fitting,
    student: SequenceModel,
    valid: EvalSet,
    grid: list[tuple[float, int, float | None]],
    holdout: float,
    seed: int,
    batch_size: int,
    min_counts: tuple[int, ...] = (),
) -> _Choice:
    """The best candidate on held-out items and its NDCG@10 for the users who target them; the
    defaults (score None) when too few validation users target a held-out item. Text neighbours
    (blended with the chosen linear map) are candidates for each of ``min_counts`` (none: no
    neighbour candidates)."""
    eligible = np.flatnonzero(fitting.counts >= 1)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(eligible, size=round(holdout * len(eligible)), replace=False))
    held_set = set(held.tolist())
    cold_rows = [i for i, target in enumerate(valid.targets) if target in held_set]
    if len(cold_rows) < MIN_VALID_USERS:
        log.info(
            "text map: only %d validation users target one of the %d held-out items (need %d): "
            "ridge=%g min_count=%d, not validated",
            *(len(cold_rows), len(held), MIN_VALID_USERS, DEFAULT_RIDGE, DEFAULT_MIN_COUNT),
        )
        return _Choice(DEFAULT_RIDGE, DEFAULT_MIN_COUNT, None, None)
    others = sorted(set(range(len(valid))) - set(cold_rows))
    warm_rows = sorted(rng.choice(others, size=min(len(others), WARM_SAMPLE), replace=False).tolist()) if others else []
    cold, warm = valid.rows(cold_rows), valid.rows(warm_rows)
    table = fitting.table
    cold_q = queries(student, cold.inputs, batch_size, table.device)
    warm_q = queries(student, warm.inputs, batch_size, table.device) if warm_rows else None
    held_rows = torch.as_tensor(held, device=table.device)
    blocked = torch.zeros(table.shape[0], dtype=torch.bool, device=table.device)
    blocked[held_rows] = True

    def estimate(candidate: torch.Tensor, without: torch.Tensor | None = None) -> tuple[float, float]:
        c = ndcg(cold_q, candidate, cold, batch_size, without)
        w = ndcg(warm_q, candidate, warm, batch_size, without) if warm_q is not None else 0.0
        return c, w

    trained = estimate(table)
    floor = (1 - WARM_TOLERANCE) * estimate(table, held_rows)[1]
    log.info(
        "text map: %d held-out items; %d validation users target one (%.1f%%), %d others sampled; "
        "NDCG@10 with their trained rows %.4f / %.4f (those / others), others without them %.4f",
        *(len(held), len(cold), 100 * len(cold_rows) / len(valid), len(warm), *trained, floor / (1 - WARM_TOLERANCE)),
    )

    def scored(weight: torch.Tensor, bias: torch.Tensor, norm: float | None) -> tuple[float, float]:
        mapped = table.clone()
        mapped[held_rows] = rescaled(torch.addmm(bias, fitting.encodings[held_rows], weight), norm)
        return estimate(mapped)

    def key(c: float, w: float) -> tuple[bool, float]:
        # Within the others' tolerance, the best for held-out targets; else the least cost to them.
        return (w >= floor, c if w >= floor else w)

    kept = np.setdiff1d(eligible, held)
    best: tuple[tuple[bool, float, float, int, float], _Choice] | None = None
    for ridge, min_count, quantile in grid:
        train = kept[fitting.counts[kept] >= min_count]
        if len(train) < 2:
            log.info("text map: min_count=%d leaves %d items to fit on, skipped", min_count, len(train))
            continue
        c, w = scored(*fitting.fit(train, ridge), _norm_at(fitting, train, quantile))
        log.info(
            "text map: ridge=%g min_count=%d norm=%s NDCG@10 held-out targets %.4f, others %.4f%s",
            *(ridge, min_count, "as fitted" if quantile is None else f"q{quantile:g}", c, w),
            "" if w >= floor else " (costs the others too much)",
        )
        # Ties go to the larger penalty, then the smaller minimum count, then no rescaling.
        candidate = (*key(c, w), ridge, -min_count, 1.0 if quantile is None else -quantile)
        if best is None or candidate > best[0]:
            best = (candidate, _Choice(ridge, min_count, quantile, c))
    if best is None:
        log.info("text map: no candidate could be fitted: ridge=%g min_count=%d", DEFAULT_RIDGE, DEFAULT_MIN_COUNT)
        return _Choice(DEFAULT_RIDGE, DEFAULT_MIN_COUNT, None, None)
    choice = best[1]
    train = kept[fitting.counts[kept] >= choice.min_count]
    weight, bias = fitting.fit(train, choice.ridge)
    norm = _norm_at(fitting, train, choice.norm_quantile)
    best_key = best[0][:2]
    epochs = fitting.ranking(train, (weight, bias), blocked, seed)
    if epochs is not None:
        since = 0
        for epoch, (w_epoch, b_epoch) in enumerate(epochs, start=1):
            c, w = scored(w_epoch, b_epoch, None)
            better = key(c, w) > best_key
            log.info(
                "text map: ridge=%g min_count=%d + %d ranking epochs: NDCG@10 held-out targets %.4f, others %.4f%s",
                *(choice.ridge, choice.min_count, epoch, c, w),
                "" if w >= floor else " (costs the others too much)",
            )
            if better:
                best_key, since, choice = key(c, w), 0, _Choice(choice.ridge, choice.min_count, None, c, epoch)
                weight, bias, norm = w_epoch, b_epoch, None
            else:
                since += 1
            if since >= RANKING_PATIENCE or epoch >= MAX_RANKING_EPOCHS:
                break
    linear = rescaled(torch.addmm(bias, fitting.encodings[held_rows], weight), norm)
    pools = {m: torch.as_tensor(kept[fitting.counts[kept] >= m], device=table.device) for m in min_counts}
    tried = 0
    for near, c, w in neighbours.search(fitting.encodings, table, pools, held_rows, linear, estimate):
        tried += 1
        log.debug(
            "text map: %s: NDCG@10 held-out targets %.4f, others %.4f%s",
            *(near, c, w),
            "" if w >= floor else " (costs the others too much)",
        )
        if key(c, w) > best_key:
            best_key, choice = key(c, w), replace(choice, score=c, neighbours=near)
    if tried:
        log.info("text map: %d text-neighbour candidates weighed (each at DEBUG)", tried)
    log.info(
        "text map: chose ridge=%g min_count=%d norm=%s ranking epochs %d, text neighbours %s "
        "(NDCG@10 of held-out targets %.4f)",
        *(choice.ridge, choice.min_count, choice.norm_quantile or "as fitted", choice.epochs),
        *(choice.neighbours, choice.score),
    )
    return choice


def fit_text_map(
    student: SequenceModel,
    encodings: torch.Tensor,
    counts: Counts,
    *,
    lm: str,
    valid: EvalSet | None = None,
    train: Sequence[Sequence[int]] | None = None,
    ridges: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0),
    min_counts: tuple[int, ...] = (1, 3),
    norm_quantiles: tuple[float | None, ...] = (None, 0.5, 0.75, 0.9),
    holdout: float = 0.1,
    seed: int = 0,
    weight_cap: int | None = None,
    batch_size: int = 256,
    text_neighbours: bool = True,
) -> TextMap:
    """Fit the text map of ``student``, chosen on ``valid`` (see the module), then refitted on
    every item with at least the chosen minimum count of interactions (the linear map's and the
    neighbours' own).

    ``encodings``: ``[num_items + 1, T]`` (row 0 padding); ``counts``: training interactions per
    item, ``[num_items + 1]``; ``train``: the training sequences, which ranking training reads
    (None: ridge candidates only). With ``weight_cap`` an item's row weighs ``min(count, cap) / cap``.
    ``text_neighbours``: whether blends with text neighbours (neighbours.py) are candidates.
    """
    with torch.no_grad():
        table = student.item_embeddings().detach().to(torch.float32)
    device = table.device if table.device.type in ("cpu", "cuda") else torch.device("cpu")
    size = student.num_items + 1
    if encodings.ndim != 2 or encodings.shape[0] != size:
        raise ValueError(f"expected encodings [{size}, T] (row 0 padding), got {tuple(encodings.shape)}")
    raw = counts.detach().cpu().numpy() if isinstance(counts, torch.Tensor) else counts
    count = np.array(raw, dtype=np.int64).reshape(-1)
    if count.shape != (size,):
        raise ValueError(f"expected counts [{size}], got {count.shape}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), not {holdout}")
    if min(min_counts, default=1) < 1:
        raise ValueError(f"min_counts must be >= 1 (row 0 is padding), not {min_counts}")
    count[0] = 0  # padding is never an item to fit
    if not (count >= 1).any():
        raise ValueError("no item has a training interaction: nothing to fit the text map on")
    positions = None
    if train is not None and valid is not None:
        positions = training_positions(student, train, seed=seed, batch_size=batch_size, device=device)
    fitting = _Fitting(table.to(device), encodings.detach().to(device, torch.float32), count, weight_cap, positions)
    choice = _Choice(DEFAULT_RIDGE, DEFAULT_MIN_COUNT, None, None)
    if valid is None:
        log.info("text map: no validation set: ridge=%g min_count=%d", choice.ridge, choice.min_count)
    else:
        grid = [(r, m, q) for m in min_counts for r in ridges for q in norm_quantiles]
        nb_counts = min_counts if text_neighbours else ()
        choice = _choose(fitting, student, valid, grid, holdout, seed, batch_size, nb_counts)
    items = np.flatnonzero(count >= choice.min_count)
    weight, bias = fitting.fit(items, choice.ridge)
    if choice.epochs:
        epochs = fitting.ranking(items, (weight, bias), None, seed)
        assert epochs is not None
        weight, bias = next(itertools.islice(epochs, choice.epochs - 1, None))
    nearest = None
    if choice.neighbours is not None:
        nb = choice.neighbours
        rows = torch.as_tensor(np.flatnonzero(count >= nb.min_count), device=fitting.table.device)
        encodings_of, rows_of = fitting.encodings[rows].cpu(), fitting.table[rows].cpu()
        nearest = Neighbours.of(encodings_of, rows_of, nb.k, nb.temperature, nb.scale)
    return TextMap(
        weight.cpu(),
        bias.cpu(),
        ridge=float(choice.ridge),
        min_count=int(choice.min_count),
        lm=lm,
        valid_ndcg=choice.score,
        norm=_norm_at(fitting, items, choice.norm_quantile),
        method="ranking" if choice.epochs else "ridge",
        epochs=choice.epochs,
        neighbours=nearest,
        blend=choice.neighbours.blend if choice.neighbours else 0.0,
    )
