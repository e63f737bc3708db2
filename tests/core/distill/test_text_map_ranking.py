"""Ranking training of the text map: the positions it reads, that it learns what it is trained
for, and that validation can choose it and the saved map says so (synthetic encodings)."""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.data.split import EvalSet
from core.distill.text_map import TEXT_MAP_FILE, fit_ridge, fit_text_map, load_text_map
from core.distill.text_map.fit import MAX_RANKING_EPOCHS, RANKING_PATIENCE
from core.distill.text_map.ranking import Positions, ranking_epochs, training_positions
from core.models.sequences import left_pad
from core.models.student import Student
from tests.core.models.factories import ITEMS, MAX_LEN, student_config

TEXT_DIM = 24


def _sequences(users: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, ITEMS + 1, size=int(rng.integers(1, 2 * MAX_LEN))).tolist() for _ in range(users)]


@pytest.mark.parametrize("objective", ["causal", "cloze"])
def test_positions_are_the_queries_before_each_next_item(objective: str) -> None:
    torch.manual_seed(0)
    student = Student(student_config(), ITEMS, objective=objective)
    student.train()
    sequences = _sequences(30)
    positions = training_positions(student, sequences, batch_size=7)
    assert student.training  # the flag is restored
    expected_q, expected_t = [], []
    student.eval()
    with torch.no_grad():
        for seq in sequences:
            window = seq[-(student.history_len + 1) :]
            for cut in range(1, len(window)):
                expected_q.append(student.encode(left_pad([window[:cut]], student.history_len))[0])
                expected_t.append(window[cut])
    assert len(positions) == len(expected_t)  # one-item sequences give none
    # Positions come in another order (batched by length): compare as sorted sets of rows.
    got = sorted(zip(positions.targets.tolist(), positions.queries.tolist(), strict=True))
    want = sorted(zip(expected_t, torch.stack(expected_q).tolist(), strict=True))
    for (t1, q1), (t2, q2) in zip(got, want, strict=True):
        assert t1 == t2
        torch.testing.assert_close(torch.tensor(q1), torch.tensor(q2), atol=1e-4, rtol=1e-4)
    sample = training_positions(student, sequences, max_positions=25, seed=3)
    assert len(sample) == 25
    with pytest.raises(ValueError, match="two items"):
        training_positions(student, [[1], [2]])


def _loss(positions: Positions, table: torch.Tensor, text: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cross-entropy of the served index when a share of the items is new (their trained rows
    replaced by mapped text vectors), averaged over fixed draws of which items are new."""
    gen, losses = torch.Generator().manual_seed(9), []
    for _ in range(20):
        new = torch.rand(ITEMS + 1, generator=gen) < SHARE
        new[0] = False
        vectors = table.clone()
        vectors[new] = torch.addmm(b, text[new], w)
        logits = positions.queries @ vectors.T
        logits[:, 0] = float("-inf")
        losses.append(float(F.cross_entropy(logits, positions.targets)))
    return sum(losses) / len(losses)


SHARE = 0.3


def test_ranking_epochs_lower_the_served_loss_from_the_ridge_start() -> None:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    student = Student(student_config(), ITEMS)
    positions = training_positions(student, _sequences(200))
    table = student.item_embeddings().detach()
    text = torch.randn(ITEMS + 1, TEXT_DIM, generator=gen)
    start = fit_ridge(text[1:], table[1:], None, 10.0)
    epochs = ranking_epochs(positions, table, text, *start, new_share=SHARE, lr=1e-2, seed=0)
    before = _loss(positions, table, text, *start)
    losses = [_loss(positions, table, text, *wb) for wb in itertools.islice(epochs, 5)]
    assert losses[-1] < before and losses[-1] < losses[0]
    # Same seed, same weights.
    again = next(ranking_epochs(positions, table, text, *start, lr=1e-2, seed=0))
    first = next(ranking_epochs(positions, table, text, *start, lr=1e-2, seed=0))
    torch.testing.assert_close(again[0], first[0])
    with pytest.raises(ValueError, match="no training position"):
        next(ranking_epochs(positions.where(torch.zeros(ITEMS + 1, dtype=torch.bool)), table, text, *start))
    with pytest.raises(ValueError, match="new_share"):
        next(ranking_epochs(positions, table, text, *start, new_share=0.0))


def _valid(sequences: list[list[int]]) -> EvalSet:
    rng = np.random.default_rng(1)
    targets = rng.integers(1, ITEMS + 1, size=len(sequences)).tolist()
    return EvalSet(list(range(1, len(sequences) + 1)), sequences, targets)


def test_validation_weighs_ranking_epochs_and_the_map_records_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    student = Student(student_config(), ITEMS)
    encodings = torch.randn(ITEMS + 1, TEXT_DIM, generator=gen)
    encodings[0] = 0
    train = _sequences(300, seed=2)
    counts = np.bincount(np.concatenate([np.asarray(s) for s in train]), minlength=ITEMS + 1)
    with caplog.at_level(logging.INFO, logger="core.distill.text_map"):
        text_map = fit_text_map(
            student,
            encodings,
            counts,
            lm="x",
            valid=_valid(train),
            train=train,
            ridges=(10.0,),
            holdout=0.25,
            text_neighbours=False,  # the linear stages alone (text neighbours: test_text_neighbours.py)
        )
    # Every candidate as logged: (epoch, NDCG@10 of held-out targets, of the others, within tolerance);
    # epoch 0 for the ridge grid. Selection keys as fit._choose: within tolerance, the best for
    # held-out targets; else the least cost to the others.
    logged = []
    for record in caplog.records:
        message = record.getMessage()
        found = re.search(
            r"(?:\+ (\d+) ranking epochs: |norm=.*? )NDCG@10 held-out targets (\d\.\d+), others (\d\.\d+)", message
        )
        if found:
            ok = "costs the others" not in message
            logged.append((int(found[1] or 0), float(found[2]), float(found[3]), ok))
    keyed = [(e, c, (ok, c if ok else w)) for e, c, w, ok in logged]
    epochs = [e for e, _, _ in keyed if e]
    assert epochs and epochs == list(range(1, len(epochs) + 1))  # evaluated epoch by epoch, then stopped
    start = max(k for e, _, k in keyed if e == 0)
    best = max([k for e, _, k in keyed if e and k > start], default=start)
    kept = min(e for e, _, k in keyed if e and k == best) if best > start else 0  # the first to beat the rest
    assert text_map.epochs == kept  # the best candidate was kept ...
    assert len(epochs) == min(kept + RANKING_PATIENCE, MAX_RANKING_EPOCHS)  # ... and patience stopped it
    assert any(text_map.valid_ndcg == pytest.approx(c, abs=1e-4) for e, c, k in keyed if e == kept and k == best)
    assert text_map.method == ("ranking" if text_map.epochs else "ridge")
    loaded = load_text_map(text_map.save(tmp_path).parent)
    assert loaded is not None and (loaded.method, loaded.epochs) == (text_map.method, text_map.epochs)
    torch.testing.assert_close(loaded(encodings), text_map(encodings))
    # Without training sequences only ridge candidates are weighed.
    ridge_only = fit_text_map(student, encodings, counts, lm="x", valid=_valid(train), ridges=(10.0,), holdout=0.25)
    assert (ridge_only.method, ridge_only.epochs) == ("ridge", 0)


def test_a_map_saved_before_ranking_existed_loads_as_ridge(tmp_path: Path) -> None:
    metadata = {"format": "1", "ridge": "10.0", "min_count": "1", "lm": "lm", "valid_ndcg": ""}  # as 094969e wrote it
    save_file({"weight": torch.zeros(6, 4), "bias": torch.zeros(4)}, str(tmp_path / TEXT_MAP_FILE), metadata)
    loaded = load_text_map(tmp_path)
    assert loaded is not None and (loaded.method, loaded.epochs) == ("ridge", 0)
