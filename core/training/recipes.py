"""End-to-end recipes: fine-tune the teacher, train a student alone, distil a student.

Used by ``kdrec train``, the quality benchmark and the refit job, so they all train the same
way. Each recipe seeds everything (``TrainConfig.seed``) before building its model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data.split import EvalSet, LeaveOneOut
from core.distill.cache import TeacherCache, build_teacher_cache
from core.distill.loss import DistillObjective
from core.distill.transfer import transfer_item_embeddings
from core.models.base import SequenceModel
from core.models.scorer import resolve_device
from core.models.student import Student
from core.models.teacher import build_teacher
from core.settings import DistillConfig, StudentConfig, TeacherConfig, TrainConfig
from core.training.data import BatchSource, WindowMode, causal_windows, training_batches
from core.training.history import History
from core.training.trainer import fit, seed_everything

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: SequenceModel
    history: History
    seconds: float
    cpu_seconds: float = 0.0
    """CPU time of this process during training (all threads)."""

    @property
    def valid(self) -> dict[str, float]:
        """Validation metrics of the epoch whose weights were kept."""
        for record in self.history.epochs:
            if record.epoch == self.history.best_epoch and record.metrics:
                return record.metrics
        return {}


VALID_SEED = 0
"""One seed for every model's validation sample: all of them are chosen on the same users."""


def valid_subset(folds: LeaveOneOut, users: int | None, seed: int = VALID_SEED) -> EvalSet:
    """``users`` validation users drawn at random with ``seed`` (all when None): cheaper early
    stopping that still stands for every user."""
    return folds.valid.sample(users, seed)


def train_teacher(
    item_texts: Sequence[str],
    folds: LeaveOneOut,
    config: TeacherConfig,
    train: TrainConfig,
    text_cache: Path | None,
    windows: WindowMode = "all",
    valid_users: int | None = None,
    progress: bool = True,
    budget_clock: str = "wall",
) -> TrainResult:
    """Fine-tune the LM teacher (or its random-init twin) on the training sequences."""
    started, cpu_started = time.perf_counter(), time.process_time()
    seed_everything(train.seed)
    teacher = build_teacher(config, item_texts, text_cache)
    batches = training_batches(teacher, folds.train.values(), train.batch_size, train.seed, windows)
    label = "teacher" if config.pretrained else "teacher (random init)"
    history = fit(
        teacher,
        batches,
        valid_subset(folds, valid_users),
        train,
        desc=label,
        progress=progress,
        budget_clock=budget_clock,
    )
    return TrainResult(teacher, history, time.perf_counter() - started, time.process_time() - cpu_started)


def new_student(config: StudentConfig, num_items: int, init_from: SequenceModel | None = None) -> Student:
    """A fresh student; with ``init_from`` its item table starts from that teacher's, projected
    to the student's width (``core.distill.transfer``)."""
    student = Student(config, num_items)
    if init_from is not None:
        transfer_item_embeddings(init_from, student)
    return student


def train_student(
    folds: LeaveOneOut,
    config: StudentConfig,
    train: TrainConfig,
    windows: WindowMode = "all",
    valid_users: int | None = None,
    progress: bool = True,
    budget_clock: str = "wall",
    init_from: SequenceModel | None = None,
) -> TrainResult:
    """The student on its own (no teacher's scores): the "student without KD" baseline, or with
    ``init_from`` the student whose item embeddings start from that teacher's."""
    started, cpu_started = time.perf_counter(), time.process_time()
    seed_everything(train.seed)
    student = new_student(config, folds.num_items, init_from)
    batches = training_batches(student, folds.train.values(), train.batch_size, train.seed, windows)
    history = fit(
        student,
        batches,
        valid_subset(folds, valid_users),
        train,
        desc="student",
        progress=progress,
        budget_clock=budget_clock,
    )
    return TrainResult(student, history, time.perf_counter() - started, time.process_time() - cpu_started)


def teacher_cache(
    teacher: SequenceModel,
    folds: LeaveOneOut,
    student_max_len: int,
    top_k: int,
    temperatures: Sequence[float],
    path: Path | None = None,
    windows: WindowMode = "all",
    last: int | None = None,
    device: str = "auto",
    keep_hidden: bool = False,
    progress: bool = True,
) -> TeacherCache:
    """Teacher top-k scores for the student's training windows; read from ``path`` when there."""
    if path is not None and path.is_file():
        cache = TeacherCache.load(path)
        if (
            set(temperatures) <= set(cache.temperatures)
            and cache.top_k >= min(top_k, teacher.num_items)
            and (cache.hidden is not None or not keep_hidden)
        ):
            log.info("teacher scores from cache %s", path)
            return cache
    inputs, targets = causal_windows(folds.train.values(), student_max_len, windows)
    started = time.perf_counter()
    cache = build_teacher_cache(
        teacher,
        inputs,
        targets,
        top_k,
        temperatures,
        last=last,
        keep_hidden=keep_hidden,
        device=resolve_device(device),
        progress=progress,
    )
    log.info("teacher scores for %d positions in %.1fs", len(cache.logits), time.perf_counter() - started)
    if path is not None:
        cache.save(path)
    return cache


def distill_student(
    folds: LeaveOneOut,
    config: StudentConfig,
    train: TrainConfig,
    distill: DistillConfig,
    cache: TeacherCache,
    windows: WindowMode = "all",
    valid_users: int | None = None,
    teacher_hidden: int | None = None,
    progress: bool = True,
    budget_clock: str = "wall",
    init_from: SequenceModel | None = None,
) -> TrainResult:
    """Train a student with alpha * CE + (1 - alpha) * T^2 * KL against the cached teacher
    (``init_from``: item embeddings also start from that teacher's)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    seed_everything(train.seed)
    student = new_student(config, folds.num_items, init_from)
    inputs, targets = causal_windows(folds.train.values(), config.max_len, windows)
    if len(inputs) != cache.num_windows:
        raise ValueError(
            f"the teacher cache has {cache.num_windows} windows, the student {len(inputs)}: "
            "it was built for other sequences or another student input length"
        )
    source = cache.at_temperature(distill.temperature)
    batches = BatchSource(inputs, targets, train.batch_size, train.seed, source)
    objective = DistillObjective(student, distill, teacher_hidden=teacher_hidden)
    history = fit(
        student,
        batches,
        valid_subset(folds, valid_users),
        train,
        objective=objective,
        desc=f"student KD a={distill.alpha} T={distill.temperature}",
        progress=progress,
        budget_clock=budget_clock,
    )
    return TrainResult(student, history, time.perf_counter() - started, time.process_time() - cpu_started)


def release(model: SequenceModel) -> None:
    """Free accelerator memory held by a model that is no longer needed."""
    model.to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
