"""The demo's first models: a quick teacher and a student distilled from it, published active.

``kdrec demo`` calls ``ensure_models`` on every start. When the registry already has an
active teacher and student for this dataset it returns at once (a second run reuses them);
otherwise it trains what is missing with the QUICK profile (about 5 minutes on 2 CPU cores:
a 2-layer MiniLM teacher reading 50 items for at most 3 epochs within a time budget; a
2 x 64 student distilled from the teacher's cached top-100 scores, same budget) and publishes it through
``store.versions.publish(promote=True)``, so the consumer and the app pick it up like any
version the scheduled jobs would produce.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import torch
from sqlalchemy.orm import Session, sessionmaker

from core.data.dataset import Dataset
from core.data.split import EvalSet, LeaveOneOut, leave_one_out
from core.evaluation import evaluate
from core.index import ItemIndex, SessionRecommender
from core.models.artifacts import load_model
from core.models.base import SequenceModel
from core.models.scorer import ModelScorer
from core.settings import DistillConfig, Settings, StudentConfig, TeacherConfig, TrainConfig
from core.training.recipes import TrainResult, teacher_cache, train_teacher
from core.training.served import ItemTexts, served_student
from store import registry
from store.models import ModelVersion
from store.versions import describe, new_artifact_folder, publish

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickProfile:
    """What the demo trains when no model is active (small enough for a laptop CPU)."""

    teacher: TeacherConfig
    teacher_train: TrainConfig
    student: StudentConfig
    student_train: TrainConfig
    distill: DistillConfig
    valid_users: int | None = 500
    """Early stopping on the first N validation users (cheaper); None: all of them."""


def quick_profile(config: Settings, minutes: float = 2.0) -> QuickProfile:
    """The QUICK profile: ``minutes`` of training for the teacher, and as much for the student.

    Small batches (32) give many more updates per CPU second than the default 128, which is
    what matters for a budget of minutes. ML-100K test HR@10 (popularity: 0.086): with the
    2-minute budgets on 2 busy CPU cores (1 teacher epoch, 6 student epochs) teacher 0.123,
    student 0.101; without budgets (3 teacher epochs, 12 student epochs) 0.194 and 0.134.
    """
    teacher = config.teacher.model_copy(update={"num_layers": 2, "max_len": 50, "objective": "causal"})
    student = config.student.model_copy(update={"max_len": 50})
    base = config.train.model_copy(update={"batch_size": 32, "warmup_steps": 20})
    return QuickProfile(
        teacher=teacher,
        teacher_train=base.model_copy(update={"epochs": 3, "patience": 2, "lr": 5e-4, "max_minutes": minutes}),
        student=student,
        student_train=base.model_copy(update={"epochs": 20, "patience": 3, "lr": 2e-3, "max_minutes": minutes}),
        distill=config.distill,
    )


@dataclass
class ActivePair:
    teacher: ModelVersion | None
    student: ModelVersion | None

    @property
    def complete(self) -> bool:
        return self.teacher is not None and self.student is not None


def active_pair(sessions: sessionmaker[Session]) -> ActivePair:
    with sessions() as session:
        pair = ActivePair(registry.get_active(session, "teacher"), registry.get_active(session, "student"))
        for version in (pair.teacher, pair.student):
            if version is not None:
                session.expunge(version)
    return pair


def _usable(version: ModelVersion | None, num_items: int) -> bool:
    """Whether an active version's artifact is on disk and was trained on this catalogue."""
    if version is None:
        return False
    folder = Path(version.artifact_path)
    if not (folder / "config.json").is_file():
        log.warning("%s version %d: artifact %s is missing; training a new one", version.kind, version.id, folder)
        return False
    trained = int(describe(folder).get("num_items", -1))
    if trained != num_items:
        log.warning(
            "%s version %d was trained on %d items, the dataset has %d; training a new one",
            version.kind,
            version.id,
            trained,
            num_items,
        )
        return False
    return True


def single_request_latency_ms(model: SequenceModel, histories: list[list[int]], k: int = 10) -> float:
    """Median wall time of one session -> vector -> FAISS top-k request (the serving path), with
    one intra-op thread as the app serves it."""
    index = ItemIndex.build(model.item_embeddings().detach().cpu())
    recommender = SessionRecommender(model.eval(), index, max_len=model.history_len, device="cpu")
    threads, omp_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        recommender.recommend(histories[:1], k)  # warm-up
        times = []
        for history in histories:
            started = time.perf_counter()
            recommender.recommend([history], k)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(omp_threads)
    return round(statistics.median(times), 3) if times else 0.0


def version_metrics(dataset: Dataset, result: TrainResult, test: EvalSet) -> dict[str, Any]:
    """What the registry keeps for a version: quality, size, latency, training time."""
    model = result.model.cpu().eval()
    scores = evaluate(ModelScorer(model, "cpu"), test)
    counts = model.parameter_counts()
    return {
        "dataset": dataset.name,
        "valid": dict(result.valid),
        "test": scores,
        "params": counts["total"],
        "non_embedding_params": counts["non_embedding"],
        "latency_ms": single_request_latency_ms(model, test.inputs[:30]),
        "train_seconds": round(result.seconds, 1),
        "stopped": result.history.stopped,
        "source": "kdrec demo (quick profile)",
    }


def _train_teacher(
    config: Settings, dataset: Dataset, folds: LeaveOneOut, profile: QuickProfile, sessions: sessionmaker[Session]
) -> tuple[ModelVersion, SequenceModel]:
    log.info(
        "training the teacher (%s LM layers, %d items, budget %s min)",
        profile.teacher.num_layers or "all",
        profile.teacher.max_len,
        profile.teacher_train.max_minutes or "none",
    )
    result = train_teacher(
        dataset.item_texts(),
        folds,
        profile.teacher,
        profile.teacher_train,
        Path(config.artifact_dir) / "text-encodings",
        "all",
        profile.valid_users,
    )
    metrics = version_metrics(dataset, result, folds.test)
    folder = new_artifact_folder(Path(config.artifact_dir), "teacher", dataset.name)
    with sessions.begin() as session:
        version = publish(
            session,
            result.model,
            folder,
            metrics=metrics,
            serve=config.serve,
            promote=True,
            config={
                "profile": "quick",
                "teacher": profile.teacher.model_dump(),
                "train": profile.teacher_train.model_dump(),
                "dataset": dataset.name,
            },
        )
        session.expunge(version)
    return version, result.model


def _distil_student(
    config: Settings,
    dataset: Dataset,
    folds: LeaveOneOut,
    profile: QuickProfile,
    teacher_version: ModelVersion,
    teacher: SequenceModel,
    sessions: sessionmaker[Session],
) -> ModelVersion:
    log.info(
        "distilling the student (%d x %d) from teacher version %d",
        profile.student.num_layers,
        profile.student.hidden,
        teacher_version.id,
    )
    distill = profile.distill
    cache_path = (
        Path(config.artifact_dir)
        / "teacher-scores"
        / f"v{teacher_version.id}-L{profile.student.max_len}-k{distill.top_k}.safetensors"
    )
    cache = teacher_cache(
        teacher,
        folds,
        profile.student.max_len,
        distill.top_k,
        (distill.temperature,),
        cache_path,
        device=profile.student_train.device,
    )
    texts = ItemTexts(dataset.item_texts(), config.teacher.checkpoint, Path(config.artifact_dir) / "text-encodings")
    served = served_student(
        folds,
        profile.student,
        profile.student_train,
        distill,
        cache,
        teacher,
        texts,
        valid_users=profile.valid_users,
    )
    result = served.result
    metrics = version_metrics(dataset, result, folds.test)
    folder = new_artifact_folder(Path(config.artifact_dir), "student", dataset.name)
    if served.text_map is not None:  # in the folder before the version exists: the consumer loads both
        served.text_map.save(folder)
    with sessions.begin() as session:
        version = publish(
            session,
            result.model,
            folder,
            metrics=metrics,
            serve=config.serve,
            parent_id=teacher_version.id,
            promote=True,
            config={
                "profile": "quick",
                "student": profile.student.model_dump(),
                "train": profile.student_train.model_dump(),
                "distill": distill.model_dump(),
                "dataset": dataset.name,
            },
        )
        session.expunge(version)
    return version


def ensure_models(
    config: Settings, dataset: Dataset, sessions: sessionmaker[Session], profile: QuickProfile
) -> tuple[ActivePair, list[str]]:
    """Active teacher and student for ``dataset``, training what is missing; returns what was trained."""
    pair = active_pair(sessions)
    teacher_ok = _usable(pair.teacher, dataset.num_items)
    student_ok = _usable(pair.student, dataset.num_items)
    if teacher_ok and student_ok:
        return pair, []
    trained: list[str] = []
    folds = leave_one_out(dataset)
    if teacher_ok:
        assert pair.teacher is not None
        teacher = load_model(pair.teacher.artifact_path)
        teacher_version = pair.teacher
    else:
        teacher_version, teacher = _train_teacher(config, dataset, folds, profile, sessions)
        trained.append(f"teacher v{teacher_version.id}")
    if not student_ok or not teacher_ok:
        student_version = _distil_student(config, dataset, folds, profile, teacher_version, teacher, sessions)
        trained.append(f"student v{student_version.id}")
    return active_pair(sessions), trained
