"""Model versions on disk and in the registry: publish a trained model, load one to serve.

A version's artifact folder holds the model (``core.models.artifacts``) and, for a student,
the FAISS index of its item embeddings (``core.index``), saved with the version id. This is
where training (the CLI, the scheduled jobs) hands models to serving (the stream consumer,
the app): they meet through the registry, never through each other.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy.orm import Session

from core.data.dataset import Item
from core.distill.text_map import TextMap, load_text_map
from core.index import ItemIndex, SessionRecommender, load_index, save_index
from core.models.artifacts import load_model, read_config, save_model
from core.models.base import SequenceModel
from core.settings import ServeConfig
from store import registry
from store.models import ModelVersion

log = logging.getLogger(__name__)


def new_artifact_folder(root: Path, kind: str, label: str) -> Path:
    """A fresh, unique folder ``<root>/<kind>/<label>-<time>`` for a version's files."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(root) / kind / f"{label}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(root) / kind / f"{label}-{stamp}-{suffix}"
    return folder


def publish(
    session: Session,
    model: SequenceModel,
    folder: Path,
    *,
    metrics: dict[str, Any],
    config: dict[str, Any],
    serve: ServeConfig,
    parent_id: int | None = None,
    promote: bool = False,
    saved: bool = False,
) -> ModelVersion:
    """Save ``model`` (and a student's index) into ``folder`` and register it as a version.

    The version is a candidate unless ``promote``; the caller owns the transaction. With
    ``saved`` the model files are already there (``save_model`` with the same metrics and
    config, called before the transaction so that a large model's write holds no database
    lock): only the small FAISS index, which is named after the version id, is written here.
    """
    folder = Path(folder).resolve()
    if not saved:
        save_model(model, folder, metrics=metrics, extra=config)
    version = registry.register(session, model.kind, str(folder), config=config, metrics=metrics, parent_id=parent_id)
    if model.kind == "student":
        index = ItemIndex.from_config(model.item_embeddings().detach().cpu(), serve, model_version=version.id)
        save_index(index, folder, version.id)
    if promote:
        registry.promote(session, version.id)
    log.info("published %s version %d at %s (%s)", model.kind, version.id, folder, "active" if promote else "candidate")
    return version


@dataclass
class LoadedVersion:
    """A version ready to serve: the model in eval mode and, for students, its FAISS index and
    text map (``core.distill.text_map``; None when the artifact has none)."""

    version_id: int
    kind: str
    artifact_path: Path
    model: SequenceModel
    recommender: SessionRecommender
    metrics: dict[str, Any] = field(default_factory=dict)
    load_seconds: float = 0.0
    text_map: TextMap | None = None
    text_items: set[int] = field(default_factory=set)
    """Ids served from their text alone: catalogue items added after this version was trained."""

    def recommend(self, histories: list[list[int]], k: int):
        """Top-``k`` unseen items for each history: a ``core.index.SearchResult``."""
        return self.recommender.recommend(histories, k)

    def add_text_items(self, items: list[Item], encodings: torch.Tensor) -> int:
        """Serve ``items`` from their LM text ``encodings`` ``[len(items), T]``; returns how many.

        Items the model learnt (ids up to its ``num_items``) are skipped: their trained rows stay.
        The others are mapped into the model's space by the text map and added to (or, when
        already served from text, replaced in) a copy of the index, which then replaces the
        recommender's in one reference assignment, so a search in another thread sees the old
        index or the new one. Ids beyond the index must continue its dense range. Without a
        text map nothing is added.
        """
        if self.text_map is None or not items:
            return 0
        if len(items) != len(encodings):
            raise ValueError(f"{len(items)} items but {len(encodings)} encodings")
        rows = [row for row, item in enumerate(items) if item.item_id > self.model.num_items]
        if not rows:
            return 0
        ids = np.array([items[row].item_id for row in rows], dtype=np.int64)
        vectors = self.text_map(encodings[rows].detach().cpu())
        self.recommender.index = self.recommender.index.with_items(ids, vectors)
        self.text_items |= set(ids.tolist())
        return len(rows)


def load_version(version: ModelVersion, serve: ServeConfig, device: str = "cpu") -> LoadedVersion:
    """Load a registered version's model and index (a teacher's index is built in memory)."""
    started = time.perf_counter()
    folder = Path(version.artifact_path)
    model = load_model(folder, device=device)
    try:
        index = load_index(folder, version.id)
    except (FileNotFoundError, ValueError) as exc:
        log.info("building an in-memory index for version %d (%s)", version.id, exc)
        index = ItemIndex.from_config(model.item_embeddings().detach().cpu(), serve, model_version=version.id)
    recommender = SessionRecommender(model, index, max_len=model.history_len, device=device)
    return LoadedVersion(
        version.id,
        version.kind,
        folder,
        model,
        recommender,
        dict(version.metrics or {}),
        time.perf_counter() - started,
        text_map=_text_map(folder) if version.kind == "student" else None,
    )


def _text_map(folder: Path) -> TextMap | None:
    """The student's text map; a malformed one is logged and left out (the model still serves)."""
    try:
        return load_text_map(folder)
    except ValueError as exc:
        log.warning("%s; new items will not be served from their text", exc)
        return None


def describe(folder: Path) -> dict[str, Any]:
    """The architecture spec saved with an artifact (for tables and the app)."""
    return read_config(folder).get("spec", {})


def prune_artifacts(session: Session, keep: int) -> list[Path]:
    """Delete the artifact folders of all but the newest ``keep`` versions of each kind.

    Active versions are always kept. Returns the folders removed.
    """
    removed: list[Path] = []
    for kind in ("teacher", "student"):
        for version in registry.list_versions(session, kind)[keep:]:  # newest first
            folder = Path(version.artifact_path)
            if version.status == "active" or not folder.exists():
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("pruned %d old artifact folders", len(removed))
    return removed
