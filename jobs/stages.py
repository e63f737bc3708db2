"""The work of one refit, stage by stage, without the bookkeeping (see jobs.pipeline).

``load`` reads every stored sequence (streamed events included) and holds out each user's most
recent event; ``refit_teacher`` warm-starts from the active teacher over today's catalogue;
``distil`` scores the student's windows with the teacher once and trains a fresh student;
``stage_candidates`` writes both models' files, then ``publish_candidates`` registers them as
candidates (the student with its FAISS index);
``evaluate`` scores candidate and active versions on the same holdout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.data.dataset import Dataset
from core.data.split import LeaveOneOut, leave_one_out
from core.distill.cache import TeacherCache
from core.distill.text_map import TextMap
from core.models.artifacts import load_model, save_model
from core.models.base import SequenceModel
from core.settings import Settings, TrainConfig
from core.training.recipes import TrainResult, teacher_cache
from core.training.served import ItemTexts, ServedStudent, served_student
from core.training.warm_start import refit_start, refit_teacher
from jobs.holdout import holdout_metrics
from store import registry
from store.load import dataset_from_store
from store.models import ModelVersion
from store.versions import LoadedVersion, load_version, new_artifact_folder, publish

LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError)
"""What loading a missing or broken artifact raises (ArtifactError is a ValueError; safetensors
raises RuntimeError/OSError on truncated files)."""

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """The data and the active versions as the run found them."""

    dataset: Dataset
    folds: LeaveOneOut
    teacher: ModelVersion | None
    student: ModelVersion | None

    @property
    def summary(self) -> dict[str, int]:
        return {**self.dataset.summary(), "holdout_users": len(self.folds.test)}


@dataclass
class Candidates:
    teacher: SequenceModel
    student: SequenceModel
    teacher_result: TrainResult
    student_result: TrainResult
    teacher_start: str
    student_text_map: TextMap | None = None


def train_configs(settings: Settings) -> tuple[TrainConfig, TrainConfig]:
    """The refit's teacher and student optimisation settings: ``train`` with the jobs budgets."""
    jobs = settings.jobs
    teacher = settings.train.model_copy(
        update={
            "epochs": jobs.teacher_epochs,
            "max_minutes": jobs.teacher_max_minutes,
            "lr": jobs.teacher_lr or settings.train.lr,
        }
    )
    student = settings.student_train.model_copy(
        update={"epochs": jobs.student_epochs, "max_minutes": jobs.student_max_minutes}
    )
    return teacher, student


def load(readers: sessionmaker[Session]) -> Snapshot:
    """All stored sequences (full history) and the active teacher and student."""
    with readers() as session:
        dataset = dataset_from_store(session, name="store", full_history=True)
        active = {kind: registry.get_active(session, kind) for kind in ("teacher", "student")}
        for version in active.values():
            if version is not None:
                session.expunge(version)
    folds = leave_one_out(dataset)
    if not folds.test.users:
        raise ValueError(f"no user has three events yet ({dataset.num_users} users): nothing to hold out")
    log.info("refit data: %s", dataset.summary())
    return Snapshot(dataset, folds, active["teacher"], active["student"])


def _trained_teacher(version: ModelVersion | None) -> tuple[SequenceModel | None, str]:
    if version is None:
        return None, ""
    try:
        return load_model(Path(version.artifact_path), device="cpu"), ""
    except LOAD_ERRORS as exc:  # a missing or broken artifact: start from the LM instead
        log.warning("active teacher v%d could not be loaded (%s); cold start", version.id, exc)
        return None, f"; active teacher v{version.id} could not be loaded: {exc}"


def refit(snapshot: Snapshot, settings: Settings, text_cache: Path | None, progress: bool) -> tuple[TrainResult, str]:
    """The warm-started (or, without a usable active teacher, cold) teacher, trained on the refit data."""
    trained, note = _trained_teacher(snapshot.teacher)
    teacher, how = refit_start(trained, settings.teacher, snapshot.dataset.item_texts(), text_cache)
    if trained is not None and how == "warm":
        how = f"warm from v{snapshot.teacher.id}"  # type: ignore[union-attr]
    train, _ = train_configs(settings)
    result = refit_teacher(
        teacher, snapshot.folds, train, settings.jobs.teacher_windows, settings.jobs.valid_users, progress
    )
    return result, how + note


def score_windows(snapshot: Snapshot, teacher: SequenceModel, settings: Settings, progress: bool) -> TeacherCache:
    """The teacher's top-k scores for every position of the student's training windows, once."""
    distill = settings.distill
    return teacher_cache(
        teacher,
        snapshot.folds,
        settings.student.max_len,
        distill.top_k,
        (distill.temperature,),
        None,
        device=settings.train.device,
        keep_hidden=distill.hidden_weight > 0,
        progress=progress,
    )


def distil(
    snapshot: Snapshot,
    cache: TeacherCache,
    teacher: SequenceModel,
    settings: Settings,
    text_cache: Path | None,
    progress: bool,
) -> ServedStudent:
    """A fresh student trained against the cached teacher scores (the redistillation), in the
    served recipe (``core.training.served``), with its text map for items not yet clicked."""
    _, train = train_configs(settings)
    texts = ItemTexts(snapshot.dataset.item_texts(), settings.teacher.checkpoint, text_cache)
    return served_student(
        snapshot.folds,
        settings.student,
        train,
        settings.distill,
        cache,
        teacher,
        texts,
        valid_users=settings.jobs.valid_users,
        progress=progress,
    )


def _summary(result: TrainResult) -> dict[str, Any]:
    return {
        "valid": result.valid,
        "train_seconds": round(result.seconds, 1),
        "stopped": result.history.stopped,
        "epochs": len(result.history.epochs),
        "best_epoch": result.history.best_epoch,
    }


@dataclass(frozen=True)
class Staged:
    """A candidate's model files, written before the registry transaction."""

    model: SequenceModel
    folder: Path
    metrics: dict[str, Any]
    config: dict[str, Any]
    text_map: TextMap | None = None


def stage_candidates(candidates: Candidates, settings: Settings, label: str, run_id: int) -> tuple[Staged, Staged]:
    """Write both models' files, outside any transaction (a teacher is ~100 MB: no database
    lock is held meanwhile)."""
    root = Path(settings.artifact_dir)
    teacher_train, student_train = train_configs(settings)
    staged = (
        Staged(
            candidates.teacher,
            new_artifact_folder(root, "teacher", label).resolve(),
            _summary(candidates.teacher_result),
            {
                "job_run": run_id,
                "teacher": candidates.teacher.spec()["config"],
                "train": teacher_train.model_dump(),
                "start": candidates.teacher_start,
            },
        ),
        Staged(
            candidates.student,
            new_artifact_folder(root, "student", label).resolve(),
            _summary(candidates.student_result),
            {
                "job_run": run_id,
                "student": settings.student.model_dump(),
                "train": student_train.model_dump(),
                "distill": settings.distill.model_dump(),
            },
            candidates.student_text_map,
        ),
    )
    for candidate in staged:
        save_model(candidate.model, candidate.folder, metrics=candidate.metrics, extra=candidate.config)
        if candidate.text_map is not None:
            candidate.text_map.save(candidate.folder)
    return staged


def publish_candidates(
    session: Session, staged: tuple[Staged, Staged], settings: Settings
) -> tuple[ModelVersion, ModelVersion]:
    """Register both staged models as candidates (the student with its FAISS index)."""
    teacher, student = staged
    teacher_version = publish(
        session,
        teacher.model,
        teacher.folder,
        metrics=teacher.metrics,
        config=teacher.config,
        serve=settings.serve,
        saved=True,
    )
    student_version = publish(
        session,
        student.model,
        student.folder,
        metrics=student.metrics,
        config=student.config,
        serve=settings.serve,
        parent_id=teacher_version.id,
        saved=True,
    )
    return teacher_version, student_version


def load_candidate(version: ModelVersion, settings: Settings, snapshot: Snapshot) -> LoadedVersion:
    """The candidate as it will be served (model and FAISS index read back from disk), checked."""
    loaded = load_version(version, settings.serve)
    probe = snapshot.folds.test.inputs[:4]
    result = loaded.recommend(probe, k=min(settings.serve.top_k, snapshot.dataset.num_items))
    if len(result.ids) != len(probe):
        raise RuntimeError(f"the index of student v{version.id} answered {len(result.ids)} of {len(probe)} queries")
    return loaded


def evaluate_active(version: ModelVersion | None, snapshot: Snapshot) -> tuple[dict[str, float] | None, str]:
    """Holdout metrics of the active student (None when there is none or it cannot be read)."""
    if version is None:
        return None, ""
    try:
        model = load_model(Path(version.artifact_path), device="cpu")
    except LOAD_ERRORS as exc:
        log.warning("active student v%d could not be loaded for the gate: %s", version.id, exc)
        return None, f"the active student v{version.id} could not be loaded ({exc}); "
    return holdout_metrics(model, snapshot.folds.test, snapshot.dataset.num_items), ""
