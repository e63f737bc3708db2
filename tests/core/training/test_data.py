"""Training windows and batching: causal targets at every position, deterministic shuffling."""

from __future__ import annotations

import itertools

import numpy as np

from core.training import BatchSource, causal_windows, cloze_windows
from core.training.trainer import _lr_factor


def test_last_window_predicts_the_next_item_at_every_position() -> None:
    inputs, targets = causal_windows([[1, 2, 3, 4], [5, 6], [7]], max_len=5)
    assert inputs.tolist() == [[0, 0, 1, 2, 3], [0, 0, 0, 0, 5]]
    assert targets.tolist() == [[0, 0, 2, 3, 4], [0, 0, 0, 0, 6]]


def test_last_window_keeps_the_most_recent_items() -> None:
    inputs, targets = causal_windows([list(range(1, 11))], max_len=4)
    assert inputs.tolist() == [[6, 7, 8, 9]] and targets.tolist() == [[7, 8, 9, 10]]


def test_all_windows_make_every_training_item_a_target_once() -> None:
    seq = list(range(1, 12))
    inputs, targets = causal_windows([seq], max_len=4, mode="all")
    assert sorted(t for t in targets.ravel().tolist() if t) == seq[1:]
    for row_in, row_out in zip(inputs, targets, strict=False):
        real = row_in != 0
        assert (row_out[real] == row_in[real] + 1).all()


def test_cloze_windows() -> None:
    assert cloze_windows([[1, 2, 3], [4]], max_len=4).tolist() == [[0, 1, 2, 3]]


def test_batches_are_seeded_and_trimmed() -> None:
    inputs, targets = causal_windows([[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 3]], max_len=6)
    source = BatchSource(inputs, targets, batch_size=2, seed=1)
    first = [b.inputs.tolist() for b in source.epoch(1)]
    assert first == [b.inputs.tolist() for b in BatchSource(inputs, targets, 2, seed=1).epoch(1)]
    assert len(first) == len(source) == 2
    assert sorted(map(tuple, itertools.chain.from_iterable(first)), key=str) != []
    for b in source.epoch(2):
        assert (b.inputs[:, 0] != 0).any()  # no all-padding column on the left


def test_learning_rate_warms_up_then_decays_linearly() -> None:
    factors = [_lr_factor(step, total=10, warmup=4, elapsed=0, budget=None) for step in range(10)]
    assert factors[0] == 0.25 and np.isclose(factors[3], 0.7)
    assert all(a >= b for a, b in itertools.pairwise(factors[3:]))
    assert _lr_factor(1, total=1000, warmup=0, elapsed=30, budget=60) == 0.5
