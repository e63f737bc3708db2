"""The served student's recipe, the same wherever a student is made for serving.

``kdrec train student``, the demo's first models and the scheduled redistillation all call
``served_student``: the student is distilled from the teacher's cached scores (logit KD) and,
when ``DistillConfig.transfer`` is set, its item table starts from the teacher's item
representations (``core.distill.transfer``). Then its text map is fitted
(``core.distill.text_map``): the LM's reading of an item's text -> the student's item space, so
an item nobody has clicked yet can be served from its text alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from core.data.dataset import item_counts
from core.data.split import LeaveOneOut
from core.distill.cache import TeacherCache
from core.distill.text_map import TextMap, fit_text_map
from core.models.base import SequenceModel
from core.settings import DistillConfig, StudentConfig, TrainConfig
from core.text.checkpoint import checkpoint_identity, resolve_checkpoint
from core.text.encoder import encode_texts
from core.training.recipes import TrainResult, distill_student, valid_subset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemTexts:
    """What the text map reads: each item's text (item 1 first) and the LM reading it."""

    texts: list[str]
    checkpoint: str | None = None
    """A local BERT-family folder (None: the bundled all-MiniLM-L6-v2)."""
    cache_dir: Path | None = None

    def encodings(self) -> tuple[torch.Tensor, str]:
        """``[num_items + 1, T]`` mean-pooled LM encodings (row 0, padding, zero) and the LM's identity."""
        folder = resolve_checkpoint(self.checkpoint)
        table = encode_texts(folder, self.texts, self.cache_dir)
        return torch.cat([torch.zeros(1, table.shape[1]), table]), checkpoint_identity(folder)


@dataclass
class ServedStudent:
    result: TrainResult
    text_map: TextMap | None

    @property
    def model(self) -> SequenceModel:
        return self.result.model


def served_student(
    folds: LeaveOneOut,
    config: StudentConfig,
    train: TrainConfig,
    distill: DistillConfig,
    cache: TeacherCache,
    teacher: SequenceModel,
    texts: ItemTexts | None,
    *,
    valid_users: int | None = None,
    progress: bool = True,
) -> ServedStudent:
    """The student distilled from ``teacher`` (KD, plus embedding transfer when
    ``distill.transfer``), with its text map when ``texts`` is given."""
    result = distill_student(
        folds,
        config,
        train,
        distill,
        cache,
        valid_users=valid_users,
        teacher_hidden=teacher.item_embeddings().shape[1],
        progress=progress,
        init_from=teacher if distill.transfer else None,
    )
    return ServedStudent(result, text_map_for(result.model, folds, texts, valid_users))


def text_map_for(
    student: SequenceModel, folds: LeaveOneOut, texts: ItemTexts | None, valid_users: int | None = None
) -> TextMap | None:
    """The student's text map, chosen on the validation users (None without item texts)."""
    if texts is None:
        return None
    if len(texts.texts) != student.num_items:
        raise ValueError(f"{len(texts.texts)} item texts for a student of {student.num_items} items")
    encodings, lm = texts.encodings()
    counts = item_counts(folds.train.values(), folds.num_items)
    text_map = fit_text_map(
        student, encodings, counts, lm=lm, valid=valid_subset(folds, valid_users), train=list(folds.train.values())
    )
    log.info(
        "text map %d -> %d (%s; validation NDCG@10 of held-out items %s)",
        text_map.text_dim,
        text_map.dim,
        text_map.describe(),
        "n/a" if text_map.valid_ndcg is None else f"{text_map.valid_ndcg:.4f}",
    )
    return text_map
