"""Training histories: CPU time per epoch, CPU time to the kept epoch, and old JSON still loads."""

from __future__ import annotations

import pytest

from core.data.split import EvalSet
from core.models.student import Student
from core.settings import TrainConfig
from core.training import History, fit, seed_everything, training_batches
from tests.core.models.factories import ITEMS, student_config, tiny_sequences


def _data() -> tuple[dict[int, list[int]], EvalSet]:
    sequences = tiny_sequences(40)
    train = {u: s[:-1] for u, s in sequences.items()}
    return train, EvalSet(list(sequences), list(train.values()), [s[-1] for s in sequences.values()])


def test_fit_records_cpu_time_and_the_history_round_trips() -> None:
    train, valid = _data()
    seed_everything(0)
    model = Student(student_config(), ITEMS)
    config = TrainConfig(epochs=4, batch_size=8, lr=5e-3, warmup_steps=2, patience=4, device="cpu")
    history = fit(model, training_batches(model, train.values(), 8, 0), valid, config, progress=False)
    cpu = [rec.cpu_s for rec in history.epochs]
    assert all(c is not None and c > 0 for c in cpu) and cpu == sorted(cpu)
    best = history.best_record()
    assert best is not None and best.epoch == history.best_epoch
    assert history.cpu_seconds_to_best() == best.cpu_s
    assert History.from_dict(history.to_dict()) == history


def test_a_history_saved_before_cpu_time_loads_with_none() -> None:
    old = {
        "metric": "NDCG@10",
        "best_epoch": 2,
        "best_metric": 0.3,
        "stopped": "patience",
        "seconds": 9.0,
        "epochs": [
            {
                "epoch": e,
                "loss": 1.0 / e,
                "elapsed_s": 3.0 * e,
                "lr": 1e-3,
                "steps": 10 * e,
                "metrics": {"NDCG@10": 0.1 * e},
            }
            for e in (1, 2, 3)
        ],
    }
    history = History.from_dict(old)
    assert [rec.cpu_s for rec in history.epochs] == [None, None, None]
    assert history.cpu_seconds_to_best() is None and history.best_record().elapsed_s == 6.0
    assert History.from_dict({**old, "best_epoch": None}).cpu_seconds_to_best() is None


def test_a_malformed_history_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"not a training history.*wall_s"):
        History.from_dict({"metric": "NDCG@10", "epochs": [{"epoch": 1, "wall_s": 2.0}]})
    with pytest.raises(ValueError, match="not a training history"):
        History.from_dict({"metric": "NDCG@10", "epochs": [{"epoch": 1}]})
