"""The text -> student-space map: the ridge fit, recovery of a linear item table, the file
format, and the choice of penalty and minimum count by validation (synthetic encodings)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from core.data.split import EvalSet
from core.distill.text_map import TEXT_MAP_FILE, TextMap, fit_ridge, fit_text_map, load_text_map
from core.models.student import Student
from tests.core.models.factories import ITEMS, student_config

TEXT_DIM = 24


def _linear_student(num_items: int, seed: int = 0) -> tuple[Student, torch.Tensor]:
    """A student whose item rows are exactly a linear function of synthetic text encodings."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    student = Student(student_config(), num_items)
    encodings = torch.randn(num_items + 1, TEXT_DIM, generator=gen)
    encodings[0] = 0
    true_map = torch.randn(TEXT_DIM, student.config.hidden, generator=gen) * 0.05
    with torch.no_grad():
        student.item_embedding.weight[1 : num_items + 1] = encodings[1:] @ true_map
    return student, encodings


def _valid(users: int, seed: int = 0) -> EvalSet:
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(1, ITEMS + 1, size=int(rng.integers(3, 16))).tolist() for _ in range(users)]
    targets = rng.integers(1, ITEMS + 1, size=users).tolist()
    return EvalSet(list(range(1, users + 1)), inputs, targets)


def test_fit_ridge_recovers_a_linear_map_and_drops_zero_weights() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=gen)
    true_w, true_b = torch.randn(8, 3, generator=gen), torch.randn(3, generator=gen) + 2.0
    y = x @ true_w + true_b + 0.01 * torch.randn(300, 3, generator=gen)
    weight, bias = fit_ridge(x, y, None, 1e-6)
    assert weight.shape == (8, 3) and bias.shape == (3,) and weight.dtype == torch.float32
    torch.testing.assert_close(weight, true_w, atol=5e-3, rtol=0)
    torch.testing.assert_close(bias, true_b, atol=5e-3, rtol=0)
    # Rows weighted 0 change nothing, however wrong they are.
    junk_x, junk_y = 10 * torch.randn(50, 8, generator=gen), 100 * torch.randn(50, 3, generator=gen)
    weights = torch.cat([torch.ones(300), torch.zeros(50)])
    with_junk = fit_ridge(torch.cat([x, junk_x]), torch.cat([y, junk_y]), weights, 1.0)
    clean = fit_ridge(x, y, None, 1.0)
    torch.testing.assert_close(with_junk[0], clean[0])
    torch.testing.assert_close(with_junk[1], clean[1])
    # The intercept is not penalised: a huge penalty leaves the (weighted) mean target.
    weights = torch.rand(300, generator=gen)
    flat_w, flat_b = fit_ridge(x, y, weights, 1e12)
    assert float(flat_w.abs().max()) < 1e-6
    torch.testing.assert_close(flat_b, (weights @ y) / weights.sum(), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        fit_ridge(x, y, torch.zeros(300), 1.0)


def test_a_linear_item_table_is_recovered_for_unseen_items() -> None:
    student, encodings = _linear_student(300)
    counts = np.zeros(301, dtype=np.int64)
    counts[1:251] = 5  # items 251..300 were never clicked: the map never sees their rows
    text_map = fit_text_map(student, encodings, counts, lm="synthetic")
    assert (text_map.ridge, text_map.min_count, text_map.valid_ndcg) == (100.0, 1, None)
    assert (text_map.text_dim, text_map.dim) == (TEXT_DIM, student.config.hidden)
    mapped = text_map(encodings)
    assert mapped.shape == (301, student.config.hidden) and mapped.dtype == torch.float32
    true = student.item_embeddings().detach()
    cosine = torch.nn.functional.cosine_similarity(mapped[251:], true[251:], dim=1)
    assert float(cosine.min()) > 0.95
    assert counts[0] == 0 and counts[1] == 5  # the caller's counts are left as they were


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    original = TextMap(torch.randn(6, 4, generator=gen), torch.randn(4, generator=gen), 10.0, 3, "lm@abc", 0.25)
    path = original.save(tmp_path / "model")
    assert path == tmp_path / "model" / TEXT_MAP_FILE and path.is_file()
    assert not list(path.parent.glob("*.tmp"))
    loaded = load_text_map(tmp_path / "model")
    assert loaded is not None
    assert torch.equal(loaded.weight, original.weight) and torch.equal(loaded.bias, original.bias)
    assert (loaded.ridge, loaded.min_count, loaded.lm, loaded.valid_ndcg) == (10.0, 3, "lm@abc", 0.25)
    unvalidated = TextMap(original.weight, original.bias, 100.0, 1, "lm", None)
    reloaded = load_text_map(unvalidated.save(tmp_path / "other").parent)
    assert reloaded is not None and reloaded.valid_ndcg is None
    assert load_text_map(tmp_path / "absent") is None


def _metadata(**overrides: str) -> dict[str, str]:
    return {"format": "1", "ridge": "10.0", "min_count": "1", "lm": "lm", "valid_ndcg": "", **overrides}


@pytest.mark.parametrize(
    ("tensors", "metadata"),
    [
        ({"weight": torch.zeros(6, 4), "bias": torch.zeros(5)}, _metadata()),  # shape mismatch
        ({"weight": torch.zeros(6, 4)}, _metadata()),  # no bias
        ({"weight": torch.zeros(6, 4), "bias": torch.zeros(4)}, _metadata(ridge="lots")),
        ({"weight": torch.zeros(6, 4), "bias": torch.zeros(4)}, {"format": "1", "ridge": "1.0"}),
        ({"weight": torch.zeros(6, 4), "bias": torch.zeros(4)}, _metadata(format="99")),
        (None, None),  # not a safetensors file at all
    ],
)
def test_malformed_files_name_the_file(
    tmp_path: Path, tensors: dict[str, torch.Tensor] | None, metadata: dict[str, str] | None
) -> None:
    path = tmp_path / TEXT_MAP_FILE
    if tensors is None:
        path.write_bytes(b"definitely not a safetensors file")
    else:
        save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_text_map(tmp_path)


def test_validation_picks_a_candidate_then_refits_on_every_item(caplog: pytest.LogCaptureFixture) -> None:
    student, encodings = _linear_student(ITEMS, seed=1)
    student.train()
    counts = torch.as_tensor([0, *(int(c) for c in np.random.default_rng(0).integers(0, 7, size=ITEMS))])
    ridges, min_counts = (0.1, 10.0, 1000.0), (1, 3)

    def fit_linear() -> TextMap:  # the linear candidates alone (text neighbours: test_text_neighbours.py)
        valid = _valid(300)
        return fit_text_map(
            student,
            encodings,
            counts,
            lm="x",
            valid=valid,
            ridges=ridges,
            min_counts=min_counts,
            holdout=0.25,
            text_neighbours=False,
        )

    with caplog.at_level(logging.INFO, logger="core.distill.text_map"):
        text_map = fit_linear()
    assert student.training  # the training flag is restored
    assert text_map.ridge in ridges and text_map.min_count in min_counts
    assert isinstance(text_map.valid_ndcg, float) and 0.0 <= text_map.valid_ndcg <= 1.0
    pattern = r"ridge=(\S+) min_count=(\d+) norm=(.+?) NDCG@10 held-out targets ([\d.]+), others ([\d.]+)(.*)"
    scored = [m for r in caplog.records if (m := re.search(pattern, r.getMessage()))]
    assert len(scored) == len(ridges) * len(min_counts) * 4  # (None, q0.5, q0.75, q0.9) norms
    feasible = [m for m in scored if "costs the others too much" not in m[6]]
    assert feasible  # on an exactly linear table some map keeps the others within tolerance
    best = max(float(m[4]) for m in feasible)
    assert text_map.valid_ndcg == pytest.approx(best, abs=1e-4)  # the best for held-out targets among them
    chosen = [m for m in feasible if float(m[1]) == text_map.ridge and int(m[2]) == text_map.min_count]
    assert any(float(m[4]) == pytest.approx(best, abs=1e-4) for m in chosen)
    # The returned map is refitted on all eligible items (held-out ones included).
    items = torch.as_tensor(np.flatnonzero(counts.numpy() >= text_map.min_count))
    weight, bias = fit_ridge(encodings[items], student.item_embeddings().detach()[items], None, text_map.ridge)
    torch.testing.assert_close(text_map.weight, weight)
    torch.testing.assert_close(text_map.bias, bias)
    # Same seed, same choice.
    again = fit_linear()
    assert (again.ridge, again.min_count, again.valid_ndcg) == (text_map.ridge, text_map.min_count, text_map.valid_ndcg)


def test_ties_go_to_the_larger_ridge() -> None:
    student, encodings = _linear_student(ITEMS)
    with torch.no_grad():  # every query vector is zero: every candidate scores the same
        student.final_norm.weight.zero_()
        student.final_norm.bias.zero_()
    counts = np.r_[0, np.full(ITEMS, 4)]
    text_map = fit_text_map(
        student, encodings, counts, lm="x", valid=_valid(300), ridges=(1.0, 10.0), min_counts=(1, 3), holdout=0.25
    )
    assert (text_map.ridge, text_map.min_count, text_map.valid_ndcg) == (10.0, 1, 0.0)


def test_too_few_validation_users_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    student, encodings = _linear_student(ITEMS)
    counts = np.r_[0, np.full(ITEMS, 4)]
    with caplog.at_level(logging.INFO, logger="core.distill.text_map"):
        text_map = fit_text_map(student, encodings, counts, lm="x", valid=_valid(10), ridges=(1.0,), min_counts=(3,))
    assert (text_map.ridge, text_map.min_count, text_map.valid_ndcg) == (100.0, 1, None)
    assert any("not validated" in r.getMessage() for r in caplog.records)


def test_weight_cap_down_weights_rarely_seen_items() -> None:
    student, encodings = _linear_student(ITEMS)
    counts = np.r_[0, np.tile([1, 10], ITEMS // 2)]
    capped = fit_text_map(student, encodings, counts, lm="x", weight_cap=10)
    items = torch.as_tensor(np.flatnonzero(counts >= 1))
    weights = torch.as_tensor(np.minimum(counts[items.numpy()], 10) / 10)
    expected = fit_ridge(encodings[items], student.item_embeddings().detach()[items], weights, 100.0)
    torch.testing.assert_close(capped.weight, expected[0])
    uncapped = fit_text_map(student, encodings, counts, lm="x")
    assert not torch.allclose(capped.weight, uncapped.weight)


def test_a_rescaling_norm_is_applied_and_saved(tmp_path: Path) -> None:
    weight, bias = torch.randn(6, 4), torch.randn(4)
    text_map = TextMap(weight, bias, ridge=1.0, min_count=1, lm="x", norm=2.5)
    vectors = text_map(torch.randn(5, 6))
    torch.testing.assert_close(vectors.norm(dim=1), torch.full((5,), 2.5))
    loaded = load_text_map(text_map.save(tmp_path).parent)
    assert loaded is not None and loaded.norm == 2.5
    as_fitted = TextMap(weight, bias, ridge=1.0, min_count=1, lm="x")
    assert load_text_map(as_fitted.save(tmp_path / "b").parent).norm is None  # type: ignore[union-attr]
