"""The training loop shared by teacher, student and distillation.

AdamW, linear warm-up then linear decay to zero (over the planned epochs, or over the time
budget when ``max_minutes`` is set, whichever runs out first), gradient clipping, validation
NDCG@10 every ``eval_every`` epochs with early stopping (``patience`` evaluations without
improvement) and the best weights restored at the end; with ``plateau_factor`` below 1, each
evaluation without improvement also sends training back to the best weights with a smaller
learning rate (so the schedule need not know how long convergence takes). Same seed and no time budget gives
the same result. Batches are bucketed by length unless ``bucket_by_length`` is off
(core.training.data); bfloat16 autocast on CUDA, and on the CPU with ``autocast_cpu``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from core.data.split import EvalSet
from core.evaluation import evaluate
from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.scorer import ModelScorer, resolve_device
from core.settings import TrainConfig
from core.training.data import BatchSource
from core.training.history import EpochRecord, History

log = logging.getLogger(__name__)
Objective = Callable[[TrainBatch], torch.Tensor]
CLIP_NORM = 1.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr_factor(step: int, total: int, warmup: int, elapsed: float, budget: float | None) -> float:
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    progress = step / max(total, 1)
    if budget:
        progress = max(progress, elapsed / budget)
    return warm * max(0.0, 1.0 - progress)


def _validate(model: SequenceModel, valid: EvalSet, device: torch.device) -> dict[str, float]:
    return evaluate(ModelScorer(model, device), valid)


def fit(
    model: SequenceModel,
    batches: BatchSource,
    valid: EvalSet | None,
    config: TrainConfig,
    objective: nn.Module | Objective | None = None,
    metric: str = "NDCG@10",
    desc: str | None = None,
    progress: bool = True,
    budget_clock: str = "wall",
) -> History:
    """Train ``model`` (in place) on ``batches``; returns the history, best weights restored.

    ``objective`` computes the loss of a batch (default: the model's own ``loss``); when it is
    a module, its trainable parameters (which include the model's) are optimised.
    ``budget_clock``: ``max_minutes`` counts wall-clock time (``wall``) or this process's CPU
    time (``process``: the same amount of compute however busy a shared machine is).
    """
    if budget_clock not in ("wall", "process"):
        raise ValueError(f"budget_clock must be 'wall' or 'process', not {budget_clock!r}")
    clock = time.process_time if budget_clock == "process" else time.perf_counter
    device = resolve_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    loss_fn: Objective = objective if objective is not None else model.loss
    owner = objective if isinstance(objective, nn.Module) else model
    owner.to(device)
    params = [p for p in owner.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    total_steps = max(1, config.epochs * len(batches))
    budget = config.max_minutes * 60 if config.max_minutes else None
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if device.type == "cuda" or (device.type == "cpu" and config.autocast_cpu)
        else contextlib.nullcontext()
    )
    history = History(metric=metric)
    best_state: dict[str, torch.Tensor] | None = None
    waited = 0
    step = 0
    scale = 1.0  # the plateau decay's share of the learning rate
    started, cpu_started = time.perf_counter(), time.process_time()
    budget_start = clock()
    name = desc or model.kind
    for epoch in range(1, config.epochs + 1):
        model.train()
        owner.train()
        running, seen, lr = 0.0, 0, config.lr
        bar = tqdm(
            batches.epoch(epoch, by_length=config.bucket_by_length),
            total=len(batches),
            desc=f"{name} epoch {epoch}",
            disable=not progress,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            elapsed = clock() - budget_start
            factor = _lr_factor(step, total_steps, config.warmup_steps, elapsed, budget)
            if factor <= 0.0 and step > 0:  # at least one step, however small the budget
                history.stopped = "budget" if budget and elapsed >= budget else "schedule"
                break
            lr = config.lr * factor * scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                mean_loss = loss_fn(batch.to(device))
            loss = mean_loss * batch.weight
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP_NORM)
            optimizer.step()
            step += 1
            value = float(mean_loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"{name}: loss became {value} at step {step}")
            running += value
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.4f}", best=f"{history.best_metric or 0:.4f}")
        bar.close()
        stopping = history.stopped in ("budget", "schedule")
        record = EpochRecord(epoch, running / max(seen, 1), round(time.perf_counter() - started, 2), lr, step)
        if valid is not None and seen and (epoch % config.eval_every == 0 or stopping or epoch == config.epochs):
            record.metrics = _validate(model, valid, device)
            score = record.metrics[metric]
            if history.best_metric is None or score > history.best_metric:
                history.best_metric, history.best_epoch, waited = score, epoch, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                waited += 1
                if config.plateau_factor < 1.0 and best_state is not None and waited < config.patience:
                    scale *= config.plateau_factor
                    model.load_state_dict(best_state)
                    log.info(
                        "%s: no better than epoch %d; on from it at %.3gx the learning rate",
                        name,
                        history.best_epoch,
                        scale,
                    )
        record.elapsed_s = round(time.perf_counter() - started, 2)
        record.cpu_s = round(time.process_time() - cpu_started, 2)
        if seen:
            history.epochs.append(record)
        log.info(
            "%s epoch %d: loss %.4f %s %.2fs",
            name,
            epoch,
            record.loss,
            " ".join(f"{k}={v:.4f}" for k, v in record.metrics.items() if k.startswith(("NDCG@10", "HR@10"))),
            record.elapsed_s,
        )
        if stopping:
            break
        if valid is not None and waited >= config.patience:
            history.stopped = "patience"
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    elif valid is None:
        history.best_epoch = history.epochs[-1].epoch if history.epochs else None
    model.eval()
    history.seconds = round(time.perf_counter() - started, 2)
    return history
