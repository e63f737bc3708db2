"""The training loop: it learns, stops early, respects a time budget and reports a history."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from core.data.split import EvalSet
from core.models.batch import TrainBatch
from core.models.student import Student
from core.settings import TrainConfig
from core.training import BatchSource, fit, seed_everything, training_batches
from tests.core.models.factories import ITEMS, student_config, tiny_sequences


def _data() -> tuple[dict[int, list[int]], EvalSet]:
    sequences = tiny_sequences(40)
    train = {u: s[:-1] for u, s in sequences.items()}
    valid = EvalSet(list(sequences), [s[:-1] for s in sequences.values()], [s[-1] for s in sequences.values()])
    return train, valid


def test_a_student_learns_the_pattern_and_reports_a_history() -> None:
    train, valid = _data()
    seed_everything(0)
    model = Student(student_config(dropout=0.0), ITEMS)
    config = TrainConfig(epochs=30, batch_size=8, lr=5e-3, warmup_steps=5, patience=30, device="cpu")
    history = fit(model, training_batches(model, train.values(), 8, 0), valid, config, progress=False)
    assert len(history.epochs) == 30 and history.stopped == "epochs"
    assert history.epochs[-1].loss < history.epochs[0].loss
    curve = history.curve()
    assert len(curve) == 30 and max(v for _, v in curve) > 0.6  # next = item + 1 is learnable
    assert history.best_metric == max(v for _, v in curve)
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(history.epochs, history.epochs[1:], strict=False))


def test_early_stopping_restores_the_best_epoch() -> None:
    train, valid = _data()
    seed_everything(0)
    model = Student(student_config(), ITEMS)
    config = TrainConfig(epochs=50, batch_size=8, lr=1e-9, warmup_steps=0, patience=2, device="cpu")
    history = fit(model, training_batches(model, train.values(), 8, 0), valid, config, progress=False)
    assert history.stopped == "patience" and len(history.epochs) == 3 and history.best_epoch == 1


def test_a_plateau_sends_training_back_to_the_best_weights_at_a_smaller_rate() -> None:
    train, valid = _data()
    seed_everything(0)
    model = Student(student_config(dropout=0.0), ITEMS)
    config = TrainConfig(
        epochs=12, batch_size=8, lr=5e-2, warmup_steps=0, patience=4, plateau_factor=0.5, device="cpu"
    )  # a rate high enough to overshoot: plateaus come
    batches = training_batches(model, train.values(), 8, 0)
    history = fit(model, batches, valid, config, progress=False)
    total = config.epochs * len(batches)
    # each epoch's last rate, without the linear decay: the plateau decay's share of it
    scales = [record.lr / (config.lr * (1 - (record.steps - 1) / total)) for record in history.epochs]
    lowered = [i for i in range(1, len(scales)) if scales[i] < scales[i - 1] - 1e-9]
    assert lowered, scales
    for i in lowered:  # each drop halves it, after an evaluation no better than the best before it
        previous = [r.metrics["NDCG@10"] for r in history.epochs[:i]]
        assert previous[-1] <= max(previous[:-1]) and math.isclose(scales[i] / scales[i - 1], 0.5, rel_tol=1e-6)
    assert all(math.isclose(scales[i], scales[i - 1]) for i in range(1, len(scales)) if i not in lowered)
    seed_everything(0)
    plain = Student(student_config(dropout=0.0), ITEMS)
    flat = fit(
        plain,
        training_batches(plain, train.values(), 8, 0),
        valid,
        config.model_copy(update={"plateau_factor": 1.0}),
        progress=False,
    )
    assert all(math.isclose(r.lr, config.lr * (1 - (r.steps - 1) / total)) for r in flat.epochs)  # never lowered
    assert [r.metrics for r in flat.epochs] != [r.metrics for r in history.epochs]


@pytest.mark.parametrize("clock", ["wall", "process"])
def test_time_budget_stops_training(clock: str) -> None:
    train, valid = _data()
    model = Student(student_config(), ITEMS)
    config = TrainConfig(epochs=1000, batch_size=8, max_minutes=1e-6, device="cpu")
    history = fit(
        model, training_batches(model, train.values(), 8, 0), valid, config, progress=False, budget_clock=clock
    )
    assert history.stopped == "budget" and len(history.epochs) == 1 and history.epochs[0].metrics
    with pytest.raises(ValueError, match="budget_clock"):
        fit(model, training_batches(model, train.values(), 8, 0), valid, config, budget_clock="sundial")


def test_fit_follows_the_bucketing_and_cpu_autocast_settings() -> None:
    train, _ = _data()
    seed_everything(0)
    model = Student(student_config(), ITEMS)
    dtypes: list[torch.dtype] = []
    next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).register_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype)
    )
    calls: list[bool] = []

    class Recording(BatchSource):
        def epoch(self, epoch: int, by_length: bool = True) -> Iterator[TrainBatch]:
            calls.append(by_length)
            return super().epoch(epoch, by_length)

    source = training_batches(model, train.values(), 8, 0)
    assert source.targets is not None
    recording = Recording(source.inputs.numpy(), source.targets.numpy(), 8, 0)
    for bucket, autocast in ((False, True), (True, False)):
        dtypes.clear()
        config = TrainConfig(epochs=1, batch_size=8, device="cpu", bucket_by_length=bucket, autocast_cpu=autocast)
        history = fit(model, recording, None, config, progress=False)
        assert calls[-1] is bucket and math.isfinite(history.epochs[0].loss)
        assert set(dtypes) == {torch.bfloat16 if autocast else torch.float32}
