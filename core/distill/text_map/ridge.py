"""Weighted ridge regression in closed form: the text map's first fit, and the start of ranking."""

from __future__ import annotations

import torch


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
