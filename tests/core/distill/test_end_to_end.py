"""End to end on a slice of ML-1M: the real MiniLM teacher (1 layer, short inputs) is fine-tuned,
distilled into a tiny student through the top-k cache, and both beat popularity (full ranking)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from core.data.catalog import DatasetNotFound, load_dataset
from core.data.dataset import Dataset
from core.data.split import leave_one_out
from core.distill import DistillObjective, build_teacher_cache
from core.evaluation import evaluate
from core.models.popularity import Popularity
from core.models.scorer import ModelScorer
from core.models.student import Student
from core.models.teacher import build_teacher
from core.settings import DistillConfig, StudentConfig, TeacherConfig, TrainConfig, load_settings
from core.training import BatchSource, causal_windows, fit, seed_everything, training_batches

pytestmark = pytest.mark.slow


def _slice(users: int = 250, min_count: int = 12) -> Dataset:
    try:
        data = load_dataset("ml-1m", load_settings().data_dirs)
    except DatasetNotFound as exc:
        pytest.skip(str(exc))
    chosen = sorted(data.sequences)[:users]
    counts = Counter(item for user in chosen for item in data.sequences[user])
    sequences = {u: [i for i in data.sequences[u] if counts[i] >= min_count] for u in chosen}
    return Dataset.reindexed("ml-1m-slice", data.items, {u: s for u, s in sequences.items() if len(s) >= 5})


def test_teacher_and_distilled_student_beat_popularity(tmp_path: Path) -> None:
    data = _slice()
    folds = leave_one_out(data)
    popularity = evaluate(Popularity(data.num_items).fit(folds.train), folds.test)["NDCG@10"]

    seed_everything(0)
    teacher = build_teacher(TeacherConfig(num_layers=1, max_len=20), data.item_texts(), tmp_path)
    config = TrainConfig(epochs=3, batch_size=32, lr=1e-3, warmup_steps=10, patience=2, device="cpu")
    fit(
        teacher, training_batches(teacher, folds.train.values(), 32, 0, mode="all"), folds.valid, config, progress=False
    )
    teacher_ndcg = evaluate(ModelScorer(teacher), folds.test)["NDCG@10"]

    inputs, targets = causal_windows(folds.train.values(), 50)
    cache = build_teacher_cache(teacher, inputs, targets, top_k=50, temperatures=(2.0,), progress=False)
    seed_everything(0)
    student = Student(StudentConfig(hidden=32, num_layers=2, num_heads=2, max_len=50, dropout=0.2), data.num_items)
    objective = DistillObjective(student, DistillConfig(alpha=0.5, temperature=2.0, top_k=50))
    student_config = config.model_copy(update={"epochs": 25, "batch_size": 16, "lr": 5e-3, "patience": 5})
    fit(
        student,
        BatchSource(inputs, targets, 16, 0, cache),
        folds.valid,
        student_config,
        objective=objective,
        progress=False,
    )
    student_ndcg = evaluate(ModelScorer(student), folds.test)["NDCG@10"]

    assert teacher_ndcg > popularity, (teacher_ndcg, popularity)
    assert student_ndcg > popularity, (student_ndcg, popularity)
    assert torch.isfinite(student.score(student.prepare([[1, 2, 3]]))).all()
