"""The neural models for the CLI: find an artifact (active registry version or a folder) and evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.data.catalog import load_dataset
from core.data.split import leave_one_out
from core.evaluation import evaluate
from core.models.artifacts import load_model
from core.models.base import SequenceModel
from core.models.scorer import ModelScorer, resolve_device
from core.settings import Settings
from store import registry
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade

KINDS = ("teacher", "student")


class ModelNotFound(FileNotFoundError):
    pass


def resolve_artifact(spec: str, config: Settings) -> tuple[Path, int | None]:
    """``teacher``/``student`` (the active registry version), a version id, or an artifact folder."""
    if spec in KINDS or spec.isdigit():
        engine = create_engine_for(config.database_url)
        try:
            upgrade(engine)
            with make_sessionmaker(engine, read_only=True)() as session:
                version = (
                    registry.get_version(session, int(spec)) if spec.isdigit() else registry.get_active(session, spec)
                )
                if version is None:
                    raise ModelNotFound(
                        f"no active {spec} in {config.database_url}; train one with 'kdrec train {spec}'"
                    )
                return Path(version.artifact_path), version.id
        except registry.VersionNotFound as exc:
            raise ModelNotFound(str(exc)) from None
        finally:
            engine.dispose()
    folder = Path(spec)
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"{spec!r} is neither teacher, student, a version id nor an artifact folder")
    return folder, None


def load_for_dataset(folder: Path, num_items: int, device: str = "auto") -> SequenceModel:
    model = load_model(folder, resolve_device(device))
    if model.num_items != num_items:
        raise ModelNotFound(f"{folder} was trained on {model.num_items} items, the dataset has {num_items}")
    return model


def neural_metrics(model: str, dataset: str, split: str, config: Settings) -> dict[str, dict[str, Any]]:
    """Full-ranking metrics of a teacher/student artifact on the dataset's leave-one-out split."""
    data = load_dataset(dataset, config.data_dirs, text_columns=config.text_columns)
    folds = leave_one_out(data)
    folder, version = resolve_artifact(model, config)
    loaded = load_for_dataset(folder, data.num_items, config.train.device)
    label = f"{loaded.kind} v{version}" if version is not None else f"{loaded.kind} ({folder.name})"
    eval_set = folds.test if split == "test" else folds.valid
    return {label: evaluate(ModelScorer(loaded), eval_set, progress=True)}
