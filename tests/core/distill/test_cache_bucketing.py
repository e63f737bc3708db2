"""Teacher scores with windows batched by length equal those at full-length padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.distill import DistillObjective, build_teacher_cache, teacher_states
from core.models.base import SequenceModel
from core.models.batch import TrainBatch
from core.models.sequences import PAD
from core.models.student import Student
from core.settings import DistillConfig
from core.training import BatchSource, causal_windows
from tests.core.models.factories import ITEMS, MAX_LEN, make_model, student_config, tiny_sequences

# Windows of every length from 2 to MAX_LEN + 1 items.
SEQUENCES = [*tiny_sequences(20).values(), *(list(range(1, n + 1)) for n in range(2, MAX_LEN + 2))]
STRIDE = 2


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SequenceModel]:
    torch.manual_seed(0)
    return {
        "lm": make_model("teacher", tmp_path_factory.mktemp("text-encodings")).eval(),
        # shorter than the windows: its states come from overlapping passes
        "short": Student(student_config(max_len=5), ITEMS).eval(),
    }


def test_teacher_states_do_not_depend_on_left_padding(teachers: dict[str, SequenceModel]) -> None:
    teacher = teachers["short"]
    inputs, _ = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    x = torch.as_tensor(inputs)
    wider = torch.cat([torch.zeros((len(x), 7), dtype=torch.long), x], dim=1)
    full = teacher_states(teacher, x, STRIDE)
    torch.testing.assert_close(
        teacher_states(teacher, wider, STRIDE)[:, 7:][x != PAD], full[x != PAD], atol=1e-5, rtol=1e-4
    )
    for row in range(len(x)):
        n = int((x[row] != PAD).sum())
        alone = teacher_states(teacher, x[row : row + 1, -n:], STRIDE)
        torch.testing.assert_close(alone[0], full[row, -n:], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["lm", "short"])
def test_cached_top_k_equal_the_full_width_scores(teachers: dict[str, SequenceModel], name: str) -> None:
    teacher = teachers[name]
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    temperatures = (1.0, 2.0)
    cache = build_teacher_cache(teacher, inputs, targets, 5, temperatures, stride=STRIDE, batch_size=3, progress=False)
    assert len(set((inputs != PAD).sum(axis=1).tolist())) > 3  # batches of several widths
    with torch.no_grad():
        for row in range(len(inputs)):
            # the unbucketed reference: this window alone, at full width
            states = teacher_states(teacher, torch.as_tensor(inputs[row : row + 1]), STRIDE)[0]
            lo, hi = int(cache.offsets[row]), int(cache.offsets[row + 1])
            assert hi - lo == int((targets[row] != PAD).sum())
            scores = teacher.logits(states[MAX_LEN - (hi - lo) :])
            top = scores.topk(5, dim=-1)
            assert torch.equal(cache.indices[lo:hi].long(), top.indices), row
            torch.testing.assert_close(cache.logits[lo:hi].float(), top.values, atol=2e-3, rtol=2e-3)
            norms = torch.stack([(scores / t).logsumexp(-1) for t in temperatures], 1)
            torch.testing.assert_close(cache.log_norms[lo:hi], norms, atol=1e-4, rtol=1e-4)


def _targets(batch: TrainBatch) -> int:
    assert batch.targets is not None
    return int((batch.targets != PAD).sum())


def test_the_distillation_loss_is_the_same_bucketed_and_unbucketed(teachers: dict[str, SequenceModel]) -> None:
    inputs, targets = causal_windows(SEQUENCES, MAX_LEN, mode="all")
    cache = build_teacher_cache(teachers["lm"], inputs, targets, 8, (2.0,), batch_size=4, progress=False)
    torch.manual_seed(1)
    objective = DistillObjective(Student(student_config(), ITEMS), DistillConfig(alpha=0.5, temperature=2.0)).eval()
    source = BatchSource(inputs, targets, 5, seed=0, teacher=cache)
    totals = []
    with torch.no_grad():
        for by_length in (True, False):
            batches = list(source.epoch(1, by_length=by_length))
            widths = {batch.inputs.shape[1] for batch in batches}
            totals.append(sum(float(objective(b)) * _targets(b) for b in batches))
            assert by_length is False or len(widths) > 3
    assert totals[0] == pytest.approx(totals[1], rel=1e-5)
    assert np.isfinite(totals[0])
