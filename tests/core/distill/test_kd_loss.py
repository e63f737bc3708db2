"""The distillation loss: exact where it should be, zero for a perfect student, student-only gradients."""

from __future__ import annotations

import copy

import numpy as np
import torch

from core.distill import DistillObjective, build_teacher_cache, kl_full, kl_topk, teacher_states
from core.models.batch import TrainBatch
from core.models.student import Student
from core.settings import DistillConfig
from core.training import BatchSource, causal_windows
from tests.core.models.factories import ITEMS, student_config, tiny_sequences


def _logits(rows: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, ITEMS + 1, generator=g) * 3
    logits[:, 0] = float("-inf")
    return logits


def _topk(logits: torch.Tensor, k: int, temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    top = logits.topk(k, dim=1)
    return top.indices, top.values, (logits / temperature).logsumexp(dim=1)


def test_full_kl_is_zero_for_equal_logits_and_positive_otherwise() -> None:
    a, b = _logits(seed=0), _logits(seed=1)
    assert kl_full(a, a, 2.0).abs() < 1e-6
    assert kl_full(b, a, 2.0) > 0.1


def test_topk_kl_with_every_item_is_the_full_kl() -> None:
    student, teacher = _logits(seed=0), _logits(seed=1)
    indices, values, log_norm = _topk(teacher, ITEMS, 2.0)
    torch.testing.assert_close(kl_topk(student, indices, values, log_norm, 2.0), kl_full(student, teacher, 2.0))


def test_topk_kl_is_zero_for_the_teacher_itself_and_bounded_by_the_full_kl() -> None:
    student, teacher = _logits(seed=0), _logits(seed=1)
    indices, values, log_norm = _topk(teacher, 5, 3.0)
    assert kl_topk(teacher, indices, values, log_norm, 3.0).abs() < 1e-6
    partial = kl_topk(student, indices, values, log_norm, 3.0)
    assert 0 < partial <= kl_full(student, teacher, 3.0) + 1e-6  # grouping the tail never adds


def _batch() -> TrainBatch:
    inputs, targets = causal_windows(tiny_sequences(6).values(), 12)
    return TrainBatch(torch.as_tensor(inputs), torch.as_tensor(targets))


def test_kd_loss_is_zero_when_the_student_equals_the_teacher() -> None:
    torch.manual_seed(0)
    student = Student(student_config(), ITEMS).eval()
    teacher = copy.deepcopy(student)
    online = DistillObjective(student, DistillConfig(alpha=0.0, temperature=2.0), teacher=teacher).eval()
    assert online(_batch()).abs() < 1e-5
    # The same through a cache holding every item (scores stored in float16: tiny rounding).
    inputs, targets = causal_windows(tiny_sequences(6).values(), 12)
    cache = build_teacher_cache(teacher, inputs, targets, ITEMS, (2.0,), progress=False)
    cached_batch = next(BatchSource(inputs, targets, 64, seed=0, teacher=cache).epoch(1))
    cached = DistillObjective(student, DistillConfig(alpha=0.0, temperature=2.0)).eval()
    assert cached(cached_batch).abs() < 1e-3


def test_gradients_reach_the_student_only() -> None:
    torch.manual_seed(0)
    student = Student(student_config(), ITEMS)
    teacher = Student(student_config(hidden=32), ITEMS)
    before = copy.deepcopy(teacher.state_dict())
    objective = DistillObjective(student, DistillConfig(alpha=0.3, temperature=2.0), teacher=teacher)
    assert not any(p is q for p in objective.parameters() for q in teacher.parameters())
    optimizer = torch.optim.AdamW(objective.parameters(), lr=0.1)
    loss = objective.train()(_batch())
    loss.backward()
    optimizer.step()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad)
    assert not teacher.training
    for name, tensor in teacher.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_hidden_alignment_trains_a_projection() -> None:
    torch.manual_seed(0)
    student, teacher = Student(student_config(), ITEMS), Student(student_config(hidden=32), ITEMS).eval()
    inputs, targets = causal_windows(tiny_sequences(6).values(), 12)
    cache = build_teacher_cache(teacher, inputs, targets, 8, (1.0,), keep_hidden=True, progress=False)
    batch = next(BatchSource(inputs, targets, 64, seed=0, teacher=cache).epoch(1))
    plain = DistillObjective(student, DistillConfig(alpha=0.5, temperature=1.0, top_k=8))
    aligned = DistillObjective(
        student, DistillConfig(alpha=0.5, temperature=1.0, top_k=8, hidden_weight=1.0), teacher_hidden=32
    )
    loss = aligned(batch)
    assert loss > plain(batch)
    loss.backward()
    assert aligned.projection is not None and aligned.projection.weight.grad is not None


def test_cache_rows_are_the_teachers_scores_at_the_right_positions(tmp_path) -> None:
    torch.manual_seed(0)
    teacher = Student(student_config(max_len=5), ITEMS).eval()
    inputs, targets = causal_windows(tiny_sequences(5).values(), 12)
    cache = build_teacher_cache(teacher, inputs, targets, 4, (1.0, 2.0), stride=2, progress=False)
    cache.save(tmp_path / "cache.safetensors")
    loaded = type(cache).load(tmp_path / "cache.safetensors", temperature=2.0)
    rows = torch.arange(len(inputs)).numpy()
    got = loaded.targets_for(rows, 12)
    x = torch.as_tensor(inputs)
    states = teacher_states(teacher, x, stride=2)
    expected = teacher.logits(states[got.present])
    assert torch.equal(got.present, x != 0)
    torch.testing.assert_close(got.indices[got.present][:, 0], expected.argmax(dim=1))
    torch.testing.assert_close(got.log_norm[got.present], (expected / 2.0).logsumexp(dim=1), rtol=1e-4, atol=1e-4)


def test_teacher_states_on_windows_longer_than_the_teacher_input() -> None:
    torch.manual_seed(0)
    teacher = Student(student_config(max_len=6), ITEMS).eval()
    x = torch.arange(1, 16).unsqueeze(0)
    states = teacher_states(teacher, x, stride=3)
    for i in range(15):
        # Each state is the teacher's encoding of a suffix of 3..6 items ending at position i.
        contexts = [teacher.encode(x[:, max(0, i + 1 - c) : i + 1]) for c in range(3, 7)]
        assert any(torch.allclose(states[:, i], c, atol=1e-5) for c in contexts), i


def test_cache_targets_for_a_subset_of_windows_with_only_their_last_positions() -> None:
    torch.manual_seed(0)
    teacher = Student(student_config(), ITEMS).eval()
    inputs, targets = causal_windows(tiny_sequences(7).values(), 12)
    cache = build_teacher_cache(teacher, inputs, targets, 4, (1.0,), last=3, progress=False)
    rows = np.array([5, 0, 3])
    got = cache.targets_for(rows, 12)
    for b, row in enumerate(rows):
        start, end = int(cache.offsets[row]), int(cache.offsets[row + 1])
        n = end - start
        assert n == min(3, int((targets[row] != 0).sum()))
        assert got.present[b].tolist() == [False] * (12 - n) + [True] * n
        assert torch.equal(got.indices[b, 12 - n :], cache.indices[start:end].long())
        assert torch.equal(got.logits[b, 12 - n :], cache.logits[start:end].float())
        assert torch.equal(got.log_norm[b, 12 - n :], cache.log_norms[start:end, 0])
