"""Warm-start a teacher refit from a trained teacher, over a catalogue that may have grown.

The refit continues the trained teacher in its own architecture (its layers, input length,
objective and item representation; the settings' differing values are logged and apply to the
next teacher trained from the LM) and keeps everything it learned (transformer layers,
positions, the embedding norm, the adaptor and the item rows it already has). Each item it has
never seen gets the same kind of start that training gives every item. A ``free`` teacher: the
LM's mean-pooled encoding of the item's text, centred over the whole catalogue (as
``LMTeacher.load_language_model`` does) and scaled to the mean norm of the learned item rows, so
new items start on the learned rows' scale. A text teacher: its text features, shifted and
scaled exactly as the trained items' were, and a zero ID row. For a cloze teacher the mask token
row moves to the end of the larger table.
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
ARCHITECTURE = ("checkpoint", "objective", "max_len", "num_layers", "items")
"""TeacherConfig fields that a refit takes from the trained teacher, not from the settings."""
PER_ITEM = ("item_embedding.weight", "text_features")
"""State entries with one row per token: copied row by row into the larger table."""


def text_rows(encodings: torch.Tensor, target_norm: float | torch.Tensor) -> torch.Tensor:
    """Text encodings centred over the catalogue and rescaled to a mean row norm of ``target_norm``."""
    centred = encodings - encodings.mean(dim=0, keepdim=True)
    return centred * (target_norm / centred.norm(dim=1).mean().clamp(min=1e-8))


@torch.no_grad()
def extend_teacher(
    trained: LMTeacher, item_texts: Sequence[str], text_cache: Path | None, config: TeacherConfig | None = None
) -> LMTeacher:
    """A copy of ``trained`` over ``len(item_texts)`` items (item i has ``item_texts[i - 1]``).

    Items ``1..trained.num_items`` keep their learned rows; later ones start from their text.
    ``config`` (same architecture, see ``compatible``) may change dropout and mask rate.
    """
    old, new = trained.num_items, len(item_texts)
    if new < old:
        raise ValueError(f"the catalogue shrank from {old} to {new} items; a refit cannot drop items")
    teacher = LMTeacher(config or trained.config, new, trained.bert_config)
    trained_state = trained.state_dict()
    per_item = [name for name in PER_ITEM if name in trained_state]
    state = {name: value for name, value in trained_state.items() if name not in per_item}
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    if sorted(missing) != sorted(per_item) or unexpected:
        raise ValueError(f"cannot warm-start: missing {missing}, unexpected {unexpected}")
    target = teacher.state_dict()
    for name in per_item:
        learned, table = trained_state[name], target[name]
        table[: old + 1] = learned[: old + 1]
        if trained.mask_token is not None and teacher.mask_token is not None:
            table[teacher.mask_token] = learned[trained.mask_token]
    if new > old:
        encodings = encode_texts(resolve_checkpoint(trained.config.checkpoint), list(item_texts), text_cache)
        if len(encodings) != new:
            raise ValueError(f"{len(encodings)} text encodings for {new} items")
        if teacher.adaptor is None:
            table = teacher.item_embedding.weight
            rows = text_rows(encodings.to(table.dtype), trained.item_embedding.weight[1 : old + 1].norm(dim=1).mean())
            table[old + 1 : new + 1] = rows[old:]
        else:  # as the trained items were read: same shift and scale; the ID rows stay zero
            features = (encodings[old:] - teacher.text_shift) * teacher.text_scale
            teacher.text_features[old + 1 : new + 1] = features.to(teacher.text_features.dtype)
            teacher.item_embedding.weight[old + 1 : new + 1] = 0.0
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


def in_architecture_of(trained: LMTeacher, config: TeacherConfig) -> TeacherConfig:
    """``config`` with the architecture fields (``ARCHITECTURE``) of ``trained``."""
    return config.model_copy(update={name: getattr(trained.config, name) for name in ARCHITECTURE})


def refit_start(
    trained: SequenceModel | None, config: TeacherConfig, item_texts: Sequence[str], text_cache: Path | None
) -> tuple[LMTeacher, str]:
    """The teacher a refit starts from and how: warm from a trained LM teacher, in its own
    architecture; from the LM when there is none."""
    if isinstance(trained, LMTeacher):
        reason = compatible(trained, config)
        if reason is not None:
            log.info(
                "the refit continues the trained teacher in its own architecture (%s); `kdrec train "
                "teacher` trains one as the settings say",
                reason,
            )
        return extend_teacher(trained, item_texts, text_cache, in_architecture_of(trained, config)), "warm"
    if trained is not None:
        log.warning("cold start: %s cannot be refitted as a teacher", compatible(trained, config))
        return build_teacher(config, item_texts, text_cache), f"cold ({compatible(trained, config)})"
    return build_teacher(config, item_texts, text_cache), "cold (no trained teacher)"


def refit_teacher(
    teacher: SequenceModel,
    folds: LeaveOneOut,
    train: TrainConfig,
    windows: WindowMode = "all",
    valid_users: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Continue training ``teacher`` (in place) on the training sequences, as ``train_teacher`` does."""
    if teacher.num_items != folds.num_items:
        raise ValueError(f"the teacher knows {teacher.num_items} items, the data has {folds.num_items}")
    started = time.perf_counter()
    seed_everything(train.seed)
    batches = training_batches(teacher, folds.train.values(), train.batch_size, train.seed, windows)
    history = fit(teacher, batches, valid_subset(folds, valid_users), train, desc="teacher refit", progress=progress)
    return TrainResult(teacher, history, time.perf_counter() - started)
