"""Tiny teacher and student builders shared by the model, training and distillation tests.

The teacher is the real all-MiniLM-L6-v2 checkpoint (from the installed package), truncated
to one layer with short inputs, over a made-up catalogue of ITEMS films.
"""

from __future__ import annotations

from pathlib import Path

from core.models.base import SequenceModel
from core.models.student import Student
from core.models.teacher import build_teacher
from core.settings import StudentConfig, TeacherConfig

ITEMS = 40
MAX_LEN = 12
GENRES = ("Drama", "Comedy", "Horror", "Animation", "Thriller")
KINDS = ("student", "teacher", "teacher-cloze", "teacher-random", "teacher-text+id", "teacher-text")


def item_texts(n: int = ITEMS) -> list[str]:
    return [f"Film number {i} ({1950 + i}). Genres: {GENRES[i % len(GENRES)]}." for i in range(1, n + 1)]


def student_config(**overrides: object) -> StudentConfig:
    base: dict[str, object] = {"hidden": 16, "num_layers": 2, "num_heads": 2, "max_len": MAX_LEN, "dropout": 0.1}
    return StudentConfig(**{**base, **overrides})


def teacher_config(kind: str = "teacher", **overrides: object) -> TeacherConfig:
    base: dict[str, object] = {
        "num_layers": 1,
        "max_len": MAX_LEN,
        "dropout": 0.1,
        "objective": "cloze" if kind == "teacher-cloze" else "causal",
        "pretrained": kind != "teacher-random",
        "items": kind.removeprefix("teacher-") if kind in ("teacher-text+id", "teacher-text") else "free",
    }
    return TeacherConfig(**{**base, **overrides})


def make_model(kind: str, text_cache: Path | None) -> SequenceModel:
    if kind == "student":
        return Student(student_config(), ITEMS)
    return build_teacher(teacher_config(kind), item_texts(), text_cache)


def tiny_sequences(users: int = 24, seed: int = 0) -> dict[int, list[int]]:
    """Deterministic toy histories with a learnable pattern (next item = item + 1, wrapping)."""
    import random

    rng = random.Random(seed)
    out = {}
    for user in range(1, users + 1):
        start = rng.randint(1, ITEMS)
        length = rng.randint(4, 2 * MAX_LEN)
        out[user] = [(start + step - 1) % ITEMS + 1 for step in range(length)]
    return out
