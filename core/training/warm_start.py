"""Warm-start a teacher refit from a trained teacher, over a catalogue that may have grown.

The refit keeps everything the trained teacher learned (transformer layers, positions, the
embedding norm and the item rows it already has) and gives each item it has never seen the
same kind of start that training gives every item: the LM's mean-pooled encoding of the item's
text, centred over the whole catalogue (as ``LMTeacher.load_language_model`` does) and scaled
to the mean norm of the learned item rows, so new items start on the learned rows' scale. For
a cloze teacher the mask token row moves to the end of the larger table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from core.data.split import LeaveOneOut
from core.models.base import SequenceModel
from core.models.teacher import LMTeacher, build_teacher
from core.settings import TeacherConfig, TrainConfig
from core.text.checkpoint import resolve_checkpoint
from core.text.encoder import encode_texts
from core.training.data import WindowMode, training_batches
from core.training.recipes import TrainResult, valid_subset
from core.training.trainer import fit, seed_everything

log = logging.getLogger(__name__)
ARCHITECTURE = ("checkpoint", "objective", "max_len", "num_layers")
"""TeacherConfig fields that must match for a trained teacher to be refitted in place."""


def text_rows(encodings: torch.Tensor, target_norm: float | torch.Tensor) -> torch.Tensor:
    """Text encodings centred over the catalogue and rescaled to a mean row norm of ``target_norm``."""
    centred = encodings - encodings.mean(dim=0, keepdim=True)
    return centred * (target_norm / centred.norm(dim=1).mean().clamp(min=1e-8))


@torch.no_grad()
def extend_teacher(trained: LMTeacher, item_texts: Sequence[str], text_cache: Path | None,
                   config: TeacherConfig | None = None) -> LMTeacher:
    """A copy of ``trained`` over ``len(item_texts)`` items (item i has ``item_texts[i - 1]``).

    Items ``1..trained.num_items`` keep their learned rows; later ones start from their text.
    ``config`` (same architecture, see ``compatible``) may change dropout and mask rate.
    """
    old, new = trained.num_items, len(item_texts)
    if new < old:
        raise ValueError(f"the catalogue shrank from {old} to {new} items; a refit cannot drop items")
    teacher = LMTeacher(config or trained.config, new, trained.bert_config)
    state = {name: value for name, value in trained.state_dict().items() if name != "item_embedding.weight"}
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    if missing != ["item_embedding.weight"] or unexpected:
        raise ValueError(f"cannot warm-start: missing {missing}, unexpected {unexpected}")
    learned = trained.item_embedding.weight
    table = teacher.item_embedding.weight
    table[: old + 1] = learned[: old + 1]
    if new > old:
        encodings = encode_texts(resolve_checkpoint(trained.config.checkpoint), list(item_texts), text_cache)
        if len(encodings) != new:
            raise ValueError(f"{len(encodings)} text encodings for {new} items")
        rows = text_rows(encodings.to(table.dtype), learned[1: old + 1].norm(dim=1).mean())
        table[old + 1: new + 1] = rows[old:]
    if trained.mask_token is not None and teacher.mask_token is not None:
        table[teacher.mask_token] = learned[trained.mask_token]
    log.info("teacher warm-started over %d items (%d new, started from their text)", new, new - old)
    return teacher.train(trained.training)


def _checkpoint_layers(checkpoint: str | None) -> int:
    from transformers import AutoConfig

    folder = resolve_checkpoint(checkpoint)
    return int(AutoConfig.from_pretrained(str(folder), local_files_only=True).num_hidden_layers)


def compatible(trained: SequenceModel, config: TeacherConfig) -> str | None:
    """None when ``trained`` can be refitted under ``config``, else why not."""
    if not isinstance(trained, LMTeacher):
        return f"a {trained.kind}, not an LM teacher"
    for name in ARCHITECTURE:
        mine = getattr(trained.config, name)
        wanted = getattr(config, name)
        if name == "num_layers":
            mine, wanted = len(trained.layers), wanted or _checkpoint_layers(config.checkpoint)
        if mine != wanted:
            return f"{name} is {mine!r} in the trained teacher but {wanted!r} in the settings"
    return None


def refit_start(trained: SequenceModel | None, config: TeacherConfig, item_texts: Sequence[str],
                text_cache: Path | None) -> tuple[LMTeacher, str]:
    """The teacher a refit starts from and how: warm from ``trained`` when compatible, else from the LM."""
    if trained is not None:
        reason = compatible(trained, config)
        if reason is None:
            return extend_teacher(trained, item_texts, text_cache, config), "warm"
        log.warning("cold start: the trained teacher cannot be refitted (%s)", reason)
        return build_teacher(config, item_texts, text_cache), f"cold ({reason})"
    return build_teacher(config, item_texts, text_cache), "cold (no trained teacher)"


def refit_teacher(teacher: SequenceModel, folds: LeaveOneOut, train: TrainConfig, windows: WindowMode = "all",
                  valid_users: int | None = None, progress: bool = True) -> TrainResult:
    """Continue training ``teacher`` (in place) on the training sequences, as ``train_teacher`` does."""
    if teacher.num_items != folds.num_items:
        raise ValueError(f"the teacher knows {teacher.num_items} items, the data has {folds.num_items}")
    started = time.perf_counter()
    seed_everything(train.seed)
    batches = training_batches(teacher, folds.train.values(), train.batch_size, train.seed, windows)
    history = fit(teacher, batches, valid_subset(folds, valid_users), train, desc="teacher refit",
                  progress=progress)
    return TrainResult(teacher, history, time.perf_counter() - started)
