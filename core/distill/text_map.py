"""Text -> student-space map: item vectors for items nobody has clicked yet (cold start).

A ridge regression (closed form, float64, unpenalised intercept) from an item's LM text
encoding to its row of the student's item table, fitted on the items the student has seen
often enough. A new item's text then gives a vector in the student's space, servable next to
the trained rows. Serving is maximum inner product, so a vector's norm decides how often the
item wins: the regression shrinks uncertain items towards the mean trained item, and so towards a small
norm that never wins against trained rows. So the rows can also be rescaled to a fixed norm
(a quantile of the trained rows' norms), and whether to, and to which, is chosen like the rest.

Everything is chosen by validation: a random share of the seen items is held out and their rows
replaced by mapped vectors. The choice is the best NDCG@10 of the validation users whose target
is a held-out item (whom the map must serve) among the candidates that keep the NDCG@10 of a
sample of the other users within ``WARM_TOLERANCE`` of an index without the held-out items (new
vectors must not crowd out good recommendations); when none does, the one that costs them least.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.data.split import EvalSet
from core.evaluation.metrics import metrics_from_ranks, pad_sequences, target_ranks
from core.models.base import SequenceModel
from core.models.sequences import left_pad, length_chunks

log = logging.getLogger(__name__)

TEXT_MAP_FILE = "text_map.safetensors"
FORMAT_VERSION = "1"
DEFAULT_RIDGE = 100.0
DEFAULT_MIN_COUNT = 1
MIN_VALID_USERS = 20
WARM_TOLERANCE = 0.02
"""How much lower the other validation users' NDCG@10 may be with the mapped vectors in the index."""
WARM_SAMPLE = 2000
"""Validation users whose target is not held out, sampled to estimate the map's cost to them."""

Counts = np.ndarray | torch.Tensor | Sequence[int]


@dataclass(frozen=True, eq=False)
class TextMap:
    """``encodings @ weight + bias``: ``[N, T]`` LM encodings -> ``[N, D]`` student item vectors."""

    weight: torch.Tensor
    bias: torch.Tensor
    ridge: float
    min_count: int
    lm: str
    valid_ndcg: float | None = None
    """Validation NDCG@10 of the users whose target was a held-out item (None: not validated)."""
    norm: float | None = None
    """Every mapped vector rescaled to this L2 norm (None: as the regression gives it)."""

    def __post_init__(self) -> None:
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[1],):
            raise ValueError(f"weight {tuple(self.weight.shape)} and bias {tuple(self.bias.shape)} do not match")

    @property
    def text_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def __call__(self, encodings: torch.Tensor) -> torch.Tensor:
        if encodings.ndim != 2 or encodings.shape[1] != self.text_dim:
            raise ValueError(f"expected encodings [N, {self.text_dim}], got {tuple(encodings.shape)}")
        weight = self.weight.to(encodings.device, torch.float32)
        return _rescaled(torch.addmm(self.bias.to(weight), encodings.to(torch.float32), weight), self.norm)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/TEXT_MAP_FILE`` (tensors plus string metadata), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / TEXT_MAP_FILE
        tensors = {"weight": self.weight, "bias": self.bias}
        metadata = {
            "format": FORMAT_VERSION,
            "ridge": repr(float(self.ridge)),
            "min_count": str(int(self.min_count)),
            "lm": self.lm,
            "valid_ndcg": "" if self.valid_ndcg is None else repr(float(self.valid_ndcg)),
            "norm": "" if self.norm is None else repr(float(self.norm)),
        }
        tmp = folder / (TEXT_MAP_FILE + ".tmp")
        save_file({k: t.detach().to("cpu", torch.float32).contiguous() for k, t in tensors.items()}, str(tmp), metadata)
        tmp.replace(path)
        return path


def _rescaled(vectors: torch.Tensor, norm: float | None) -> torch.Tensor:
    if norm is None:
        return vectors
    return vectors * (norm / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12))


def load_text_map(folder: str | Path) -> TextMap | None:
    """The map saved in ``folder``; None when there is none, ValueError when it is malformed."""
    path = Path(folder) / TEXT_MAP_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            missing = {"weight", "bias"} - set(handle.keys())
            if missing:
                raise ValueError(f"missing tensors {sorted(missing)}")
            weight, bias = handle.get_tensor("weight"), handle.get_tensor("bias")
        if metadata.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported format {metadata.get('format')!r}")
        ndcg = metadata["valid_ndcg"]
        return TextMap(
            weight.to(torch.float32),
            bias.to(torch.float32),
            ridge=float(metadata["ridge"]),
            min_count=int(metadata["min_count"]),
            lm=metadata["lm"],
            valid_ndcg=float(ndcg) if ndcg else None,
            norm=float(metadata["norm"]) if metadata.get("norm") else None,
        )
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        detail = f"missing metadata {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"malformed text map {path}: {detail}") from exc


def fit_ridge(
    encodings: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None, ridge: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted ridge ``targets ~ encodings @ weight + bias`` in closed form (float64).

    Rows are already selected (no padding); a row's weight scales its squared error, so weight 0
    drops it. The intercept is not penalised: both sides are centred by their weighted means.
    Returns ``(weight [T, D], bias [D])`` in float32, on the encodings' device.
    """
    if encodings.ndim != 2 or targets.ndim != 2 or encodings.shape[0] != targets.shape[0]:
        raise ValueError(f"encodings {tuple(encodings.shape)} and targets {tuple(targets.shape)} do not match")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, not {ridge}")
    x = encodings.to(torch.float64)
    y = targets.to(x.device, torch.float64)
    w = torch.ones(x.shape[0], dtype=torch.float64, device=x.device) if weights is None else weights.to(x)
    if w.shape != (x.shape[0],) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("weights must be one non-negative value per row, not all zero")
    x_mean, y_mean = (w / w.sum()) @ x, (w / w.sum()) @ y
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ (w[:, None] * xc)
    cross = xc.T @ (w[:, None] * yc)
    if ridge > 0:
        eye = torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
        coef = torch.linalg.solve(gram + ridge * eye, cross)
    else:
        coef = torch.linalg.pinv(gram, hermitian=True) @ cross
    bias = y_mean - x_mean @ coef
    return coef.to(torch.float32), bias.to(torch.float32)


@torch.no_grad()
def _queries(student: SequenceModel, inputs: list[list[int]], batch_size: int, device: torch.device) -> torch.Tensor:
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
def _ndcg(
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


@dataclass(frozen=True, eq=False)
class _Fitting:
    """What every candidate fit reads: the student's table, the encodings and the counts."""

    table: torch.Tensor
    encodings: torch.Tensor
    counts: np.ndarray
    cap: int | None

    def fit(self, items: np.ndarray, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(items, device=self.table.device)
        counts = self.counts[items]
        weights = np.ones(len(items)) if self.cap is None else np.minimum(counts, self.cap) / self.cap
        return fit_ridge(self.encodings[rows], self.table[rows], torch.as_tensor(weights), ridge)


@dataclass(frozen=True)
class _Choice:
    ridge: float
    min_count: int
    norm_quantile: float | None
    score: float | None


def _sample(valid: EvalSet, rows: list[int]) -> EvalSet:
    return EvalSet([valid.users[i] for i in rows], [valid.inputs[i] for i in rows], [valid.targets[i] for i in rows])


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
) -> _Choice:
    """The best (ridge, min_count, norm quantile) on held-out items and its estimated NDCG@10 over
    all validation users; the defaults and None when too few users target a held-out item."""
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
    share = len(cold_rows) / len(valid)  # of all validation users, those whose target is held out
    cold, warm = _sample(valid, cold_rows), _sample(valid, warm_rows)
    table = fitting.table
    cold_q = _queries(student, cold.inputs, batch_size, table.device)
    warm_q = _queries(student, warm.inputs, batch_size, table.device) if warm_rows else None

    held_rows = torch.as_tensor(held, device=table.device)

    def estimate(candidate: torch.Tensor, blocked: torch.Tensor | None = None) -> tuple[float, float]:
        c = _ndcg(cold_q, candidate, cold, batch_size, blocked)
        w = _ndcg(warm_q, candidate, warm, batch_size, blocked) if warm_q is not None else 0.0
        return c, w

    trained = estimate(table)
    without = estimate(table, held_rows)[1]
    floor = (1 - WARM_TOLERANCE) * without
    log.info(
        "text map: %d held-out items; %d validation users target one (%.1f%%), %d others sampled; "
        "NDCG@10 with their trained rows %.4f / %.4f (those / others), others without them %.4f",
        *(len(held), len(cold), 100 * share, len(warm), *trained, without),
    )
    kept = np.setdiff1d(eligible, held)
    best: tuple[tuple[bool, float, float, int, float], _Choice] | None = None
    for ridge, min_count, quantile in grid:
        train = kept[fitting.counts[kept] >= min_count]
        if len(train) < 2:
            log.info("text map: min_count=%d leaves %d items to fit on, skipped", min_count, len(train))
            continue
        weight, bias = fitting.fit(train, ridge)
        mapped = table.clone()
        norm = _norm_at(fitting, train, quantile)
        mapped[held_rows] = _rescaled(torch.addmm(bias, fitting.encodings[held_rows], weight), norm)
        c, w = estimate(mapped)
        log.info(
            "text map: ridge=%g min_count=%d norm=%s NDCG@10 held-out targets %.4f, others %.4f%s",
            *(ridge, min_count, "as fitted" if quantile is None else f"q{quantile:g}", c, w),
            "" if w >= floor else " (costs the others too much)",
        )
        # Within the others' tolerance, the best for held-out targets; else the least cost to the
        # others. Ties go to the larger penalty, then the smaller minimum count, then no rescaling.
        key = (w >= floor, c if w >= floor else w, ridge, -min_count, 1.0 if quantile is None else -quantile)
        if best is None or key > best[0]:
            best = (key, _Choice(ridge, min_count, quantile, c))
    if best is None:
        log.info("text map: no candidate could be fitted: ridge=%g min_count=%d", DEFAULT_RIDGE, DEFAULT_MIN_COUNT)
        return _Choice(DEFAULT_RIDGE, DEFAULT_MIN_COUNT, None, None)
    choice = best[1]
    log.info(
        "text map: chose ridge=%g min_count=%d norm=%s (NDCG@10 of held-out targets %.4f)",
        *(choice.ridge, choice.min_count, choice.norm_quantile or "as fitted", choice.score),
    )
    return choice


def fit_text_map(
    student: SequenceModel,
    encodings: torch.Tensor,
    counts: Counts,
    *,
    lm: str,
    valid: EvalSet | None = None,
    ridges: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0),
    min_counts: tuple[int, ...] = (1, 3),
    norm_quantiles: tuple[float | None, ...] = (None, 0.5, 0.75, 0.9),
    holdout: float = 0.1,
    seed: int = 0,
    weight_cap: int | None = None,
    batch_size: int = 256,
) -> TextMap:
    """Fit the text map of ``student``, the penalty and minimum count chosen on ``valid`` (see the
    module), then refitted on every item with at least ``min_count`` interactions.

    ``encodings``: ``[num_items + 1, T]`` (row 0 padding); ``counts``: training interactions per
    item, ``[num_items + 1]``. With ``weight_cap`` an item's row weighs ``min(count, cap) / cap``.
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
    count[0] = 0  # padding is never an item to fit
    if not (count >= 1).any():
        raise ValueError("no item has a training interaction: nothing to fit the text map on")
    fitting = _Fitting(table.to(device), encodings.detach().to(device, torch.float32), count, weight_cap)
    choice = _Choice(DEFAULT_RIDGE, DEFAULT_MIN_COUNT, None, None)
    if valid is None:
        log.info("text map: no validation set: ridge=%g min_count=%d", choice.ridge, choice.min_count)
    else:
        grid = [(r, m, q) for m in min_counts for r in ridges for q in norm_quantiles]
        choice = _choose(fitting, student, valid, grid, holdout, seed, batch_size)
    items = np.flatnonzero(count >= choice.min_count)
    weight, bias = fitting.fit(items, choice.ridge)
    return TextMap(
        weight.cpu(),
        bias.cpu(),
        ridge=float(choice.ridge),
        min_count=int(choice.min_count),
        lm=lm,
        valid_ndcg=choice.score,
        norm=_norm_at(fitting, items, choice.norm_quantile),
    )
