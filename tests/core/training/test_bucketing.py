"""Batches bucketed by length: every window once per epoch, far less padding, the same losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.sequences import PAD
from core.training import BatchSource, causal_windows, training_batches
from core.training.data import BUCKET_BATCHES
from tests.core.models.factories import MAX_LEN, make_model, tiny_sequences

# Windows of every length from 2 to MAX_LEN + 1 items (mode="all" also cuts the long ones).
SEQUENCES = [*tiny_sequences(60).values(), *(list(range(1, n + 1)) for n in range(2, MAX_LEN + 2))]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SequenceModel]:
    cache: Path = tmp_path_factory.mktemp("text-encodings")
    torch.manual_seed(0)
    return {kind: make_model(kind, cache).eval() for kind in ("student", "teacher", "teacher-cloze")}


def _padding(source: BatchSource, by_length: bool) -> float:
    real = total = 0
    for batch in source.epoch(1, by_length=by_length):
        real += int((batch.inputs != PAD).sum())
        total += batch.inputs.numel()
    return 1 - real / total


def test_a_bucketed_epoch_covers_every_window_exactly_once() -> None:
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    source = BatchSource(inputs, targets, batch_size=4, seed=3)
    for epoch in (1, 2):
        rows = source.batch_rows(epoch)
        assert len(rows) == len(source)
        assert sorted(np.concatenate(rows).tolist()) == list(range(len(inputs)))
        windows = sorted(tuple(int(v) for v in row[row != PAD]) for row in inputs)
        got = sorted(tuple(v for v in row if v != PAD) for b in source.epoch(epoch) for row in b.inputs.tolist())
        assert got == windows
    assert [r.tolist() for r in source.batch_rows(1)] == [r.tolist() for r in source.batch_rows(1)]  # seeded
    assert [r.tolist() for r in source.batch_rows(1)] != [r.tolist() for r in source.batch_rows(2)]
    # Unbucketed: the random batches of earlier versions, unchanged.
    order = np.random.default_rng([3, 1]).permutation(len(inputs))
    assert [r.tolist() for r in source.batch_rows(1, by_length=False)] == [
        order[i : i + 4].tolist() for i in range(0, len(order), 4)
    ]


def test_buckets_sort_within_chunks_and_shuffle_the_batch_order() -> None:
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    source = BatchSource(inputs, targets, batch_size=2, seed=0)
    lengths = source.lengths.numpy()
    chunk = 2 * BUCKET_BATCHES
    assert len(inputs) > chunk  # more than one chunk
    rows = source.batch_rows(1)
    # Every batch holds neighbours in its chunk's length order: a narrow spread of lengths...
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in rows])
    random = np.mean([lengths[b].max() - lengths[b].min() for b in source.batch_rows(1, by_length=False)])
    assert spread < random / 3
    # ...and the batches do not come out sorted (the order is shuffled).
    means = [lengths[b].mean() for b in rows]
    assert means != sorted(means) and means != sorted(means, reverse=True)


def test_bucketing_removes_most_of_the_padding() -> None:
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    source = BatchSource(inputs, targets, batch_size=4, seed=0)
    bucketed, unbucketed = _padding(source, True), _padding(source, False)
    assert bucketed < 0.05 < unbucketed, (bucketed, unbucketed)


def _full_width(batch: TrainBatch, width: int) -> TrainBatch:
    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.new_zeros((x.shape[0], width - x.shape[1])), x], dim=1)

    return TrainBatch(pad(batch.inputs), None if batch.targets is None else pad(batch.targets))


@pytest.mark.parametrize("kind", ["student", "teacher", "teacher-cloze"])
def test_trimmed_batches_give_the_states_of_full_length_padding(models: dict[str, SequenceModel], kind: str) -> None:
    model = models[kind]
    source = training_batches(model, SEQUENCES, batch_size=5, seed=0, mode="all")
    widths = []
    with torch.no_grad():
        for batch in source.epoch(1):
            full = _full_width(batch, model.max_len).inputs
            widths.append(batch.inputs.shape[1])
            trimmed_states = model.hidden_states(batch.inputs)
            full_states = model.hidden_states(full)[:, -batch.inputs.shape[1] :]
            real = batch.inputs != PAD
            torch.testing.assert_close(trimmed_states[real], full_states[real], atol=1e-5, rtol=1e-4)
    assert min(widths) < model.max_len  # some batches were trimmed


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_the_epoch_loss_is_the_same_bucketed_and_unbucketed(models: dict[str, SequenceModel], kind: str) -> None:
    """Each batch's loss equals its loss at full-length padding, so the epoch's per-target total
    is the same whichever way the windows are batched."""
    model = models[kind]
    source = training_batches(model, SEQUENCES, batch_size=5, seed=0, mode="all")
    totals = {}
    with torch.no_grad():
        for by_length in (True, False):
            total = 0.0
            for batch in source.epoch(1, by_length=by_length):
                loss = model.loss(batch)
                torch.testing.assert_close(loss, model.loss(_full_width(batch, model.max_len)), atol=1e-5, rtol=1e-5)
                assert batch.targets is not None
                total += float(loss) * int((batch.targets != PAD).sum())
            totals[by_length] = total
    assert totals[True] == pytest.approx(totals[False], rel=1e-5)


def test_weighted_bucketed_losses_average_to_the_mean_over_every_target(models: dict[str, SequenceModel]) -> None:
    """The batch weights make the epoch's objective the mean over targets (as random batches
    are in expectation), not a mean of batch means that over-weights short windows."""
    student = models["student"]
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    source = BatchSource(inputs, targets, batch_size=4, seed=3)
    weighted, total_ce, total_targets = 0.0, 0.0, 0
    with torch.no_grad():
        for batch in source.epoch(1, by_length=True):
            mean = float(student.loss(batch))
            weighted += batch.weight * mean
            n = int((batch.targets != PAD).sum())
            total_ce += mean * n
            total_targets += n
    assert weighted / len(source) == pytest.approx(total_ce / total_targets, rel=1e-5)
    assert all(batch.weight == 1.0 for batch in source.epoch(1, by_length=False))
    weights = [batch.weight for batch in source.epoch(1, by_length=True)]
    assert min(weights) < 0.5 < 1.2 < max(weights)  # short and long buckets are weighted apart
