"""``kdrec train teacher|student``: fine-tune the LM teacher, distil the student, register them.

Each run saves an artifact under ``<artifact_dir>/<kind>/``, records it in the registry as a
candidate (with its parent teacher for a student) and, unless ``--no-promote``, makes it active.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from cli.neural_eval import ModelNotFound, load_for_dataset, resolve_artifact
from core.data.catalog import DatasetNotFound, load_dataset
from core.data.errors import DataFormatError
from core.data.split import LeaveOneOut, leave_one_out
from core.distill.text_map import TextMap
from core.evaluation import evaluate
from core.evaluation.report import metrics_table, write_json
from core.models.artifacts import save_model
from core.models.scorer import ModelScorer
from core.settings import Settings, TrainConfig
from core.text import CheckpointNotFound
from core.training.data import WindowMode
from core.training.recipes import TrainResult, teacher_cache, train_student, train_teacher
from core.training.served import ItemTexts, served_student, text_map_for
from store import registry
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade
from store.versions import new_artifact_folder, publish

app = typer.Typer(help="Train the LM teacher or distil the student.", no_args_is_help=True)
ERRORS = (
    DatasetNotFound,
    DataFormatError,
    CheckpointNotFound,
    ModelNotFound,
    SQLAlchemyError,
    registry.RegistryError,
    ValueError,
)


def _train_config(
    base: TrainConfig, epochs: int | None, minutes: float | None, lr: float | None, device: str | None
) -> TrainConfig:
    """``base`` (the settings' teacher or student training) with the options given on the command line."""
    updates: dict[str, Any] = {
        k: v for k, v in {"epochs": epochs, "max_minutes": minutes, "lr": lr, "device": device}.items() if v is not None
    }
    return base.model_copy(update=updates)


def _finish(
    config: Settings,
    kind: str,
    result: TrainResult,
    folds: LeaveOneOut,
    dataset: str,
    run_config: dict[str, Any],
    promote: bool,
    register: bool,
    parent_id: int | None = None,
    text_map: TextMap | None = None,
) -> None:
    """Evaluate on the test targets, save the artifact and (unless told not to) publish it as a version:
    ``store.versions.publish`` writes the model, a student's FAISS index and the registry row, as the jobs do."""
    test = evaluate(ModelScorer(result.model), folds.test)
    metrics = {"dataset": dataset, "valid": result.valid, "test": test, "train_seconds": round(result.seconds, 1)}
    folder = new_artifact_folder(Path(config.artifact_dir), kind, Path(dataset).name).resolve()
    typer.echo(metrics_table({f"{kind} (valid)": result.valid, f"{kind} (test)": test}))
    if text_map is not None:  # in the folder before the version exists: a server loads both together
        text_map.save(folder)
    saved = f"saved {folder} after {result.seconds / 60:.1f} min ({result.history.stopped})"
    if not register:
        save_model(result.model, folder, metrics=metrics, extra={"dataset": dataset, **run_config})
        write_json(folder / "history.json", result.history.to_dict())
        typer.echo(saved)
        return
    engine = create_engine_for(config.database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine).begin() as session:
            version = publish(
                session,
                result.model,
                folder,
                metrics=metrics,
                config={"dataset": dataset, **run_config},
                serve=config.serve,
                parent_id=parent_id,
                promote=promote,
            )
            write_json(folder / "history.json", result.history.to_dict())
            typer.echo(saved)
            typer.echo(f"registered {kind} version {version.id} ({'active' if promote else 'candidate'})")
    finally:
        engine.dispose()


@app.command()
@friendly_errors(*ERRORS)
def teacher(
    dataset: str = typer.Option(None, help="Dataset name or folder (default: settings' dataset)."),
    objective: str = typer.Option(None, help="causal or cloze (default: KDREC_TEACHER__OBJECTIVE)."),
    max_len: int = typer.Option(None, help="Items the teacher reads."),
    layers: int = typer.Option(None, help="Keep the first N transformer layers of the LM."),
    random_init: bool = typer.Option(False, "--random-init", help="Same architecture, no pre-trained weights."),
    epochs: int = typer.Option(None),
    max_minutes: float = typer.Option(None, help="Time budget."),
    lr: float = typer.Option(None),
    device: str = typer.Option(None, help="auto, cpu or cuda."),
    windows: str = typer.Option("all", help="all: every training item is a target; last: SASRec windows."),
    promote: bool = typer.Option(True, help="Make the new version active."),
    register: bool = typer.Option(True, help="Record the version in the registry."),
) -> None:
    """Fine-tune the pre-trained LM teacher on the training sequences (early stopping on valid NDCG@10)."""
    config = settings()
    if windows not in ("all", "last"):
        raise typer.BadParameter("windows must be 'all' or 'last'", param_hint="--windows")
    name = dataset or config.dataset
    updates = {
        k: v for k, v in {"objective": objective, "max_len": max_len, "num_layers": layers}.items() if v is not None
    }
    if random_init:
        updates["pretrained"] = False
    teacher_config = config.teacher.model_copy(update=updates)
    teacher_config = type(teacher_config).model_validate(teacher_config.model_dump())
    train = _train_config(config.train, epochs, max_minutes, lr, device)
    data = load_dataset(name, config.data_dirs, text_columns=config.text_columns)
    folds = leave_one_out(data)
    result = train_teacher(
        data.item_texts(),
        folds,
        teacher_config,
        train,
        Path(config.artifact_dir) / "text-encodings",
        cast(WindowMode, windows),
    )
    _finish(
        config,
        "teacher",
        result,
        folds,
        name,
        {"teacher": teacher_config.model_dump(), "train": train.model_dump(), "windows": windows},
        promote,
        register,
    )


@app.command()
@friendly_errors(*ERRORS)
def student(
    teacher: str = typer.Option(
        "teacher", help="Teacher to distil from: 'teacher' (the active one), a version id or an artifact folder."
    ),
    no_kd: bool = typer.Option(False, "--no-kd", help="Train the student alone (no teacher)."),
    dataset: str = typer.Option(None, help="Dataset name or folder (default: settings' dataset)."),
    alpha: float = typer.Option(None, help="Weight of the cross-entropy on the true next item (the rest is KD)."),
    temperature: float = typer.Option(None, help="Softmax temperature of the teacher's and student's scores."),
    transfer: bool = typer.Option(
        None,
        "--transfer/--no-transfer",
        help="Start the student's item table from the teacher's (default: settings' distill.transfer).",
    ),
    epochs: int = typer.Option(None),
    max_minutes: float = typer.Option(None, help="Time budget."),
    lr: float = typer.Option(None),
    device: str = typer.Option(None, help="auto, cpu or cuda."),
    promote: bool = typer.Option(True, help="Make the new version active."),
    register: bool = typer.Option(True, help="Record the version in the registry."),
) -> None:
    """Distil the small student from a teacher (teacher scores computed once and cached)."""
    config = settings()
    name = dataset or config.dataset
    train = _train_config(config.student_train, epochs, max_minutes, lr, device)
    distill = config.distill.model_copy(
        update={
            k: v for k, v in {"alpha": alpha, "temperature": temperature, "transfer": transfer}.items() if v is not None
        }
    )
    distill = type(distill).model_validate(distill.model_dump())
    data = load_dataset(name, config.data_dirs, text_columns=config.text_columns)
    folds = leave_one_out(data)
    run_config: dict[str, Any] = {"student": config.student.model_dump(), "train": train.model_dump()}
    texts = ItemTexts(data.item_texts(), config.teacher.checkpoint, Path(config.artifact_dir) / "text-encodings")
    if no_kd:
        result = train_student(folds, config.student, train)
        text_map = text_map_for(result.model, folds, texts)
        _finish(config, "student", result, folds, name, run_config, promote, register, text_map=text_map)
        return
    folder, version = resolve_artifact(teacher, config)
    teacher_model = load_for_dataset(folder, data.num_items, train.device)
    cache_path = (
        Path(config.artifact_dir)
        / "teacher-scores"
        / f"{folder.name}-L{config.student.max_len}-k{distill.top_k}-T{distill.temperature}.safetensors"
    )
    cache = teacher_cache(
        teacher_model,
        folds,
        config.student.max_len,
        distill.top_k,
        (distill.temperature,),
        cache_path,
        device=train.device,
    )
    served = served_student(folds, config.student, train, distill, cache, teacher_model, texts)
    run_config.update({"distill": distill.model_dump(), "teacher_artifact": str(folder)})
    _finish(config, "student", served.result, folds, name, run_config, promote, register, version, served.text_map)
