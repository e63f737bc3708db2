"""Fixtures for the refit pipeline: 150 ML-100k users in SQL and tiny, fast refit settings.

The teacher is the real all-MiniLM-L6-v2 checkpoint truncated to one layer with 16 input items;
the student is one 16-wide layer. Item texts are encoded once per session (shared cache).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from core.data.catalog import DatasetNotFound
from core.data.catalog import load_dataset as open_dataset
from core.data.dataset import Dataset
from core.settings import (
    DistillConfig,
    JobsConfig,
    Settings,
    StudentConfig,
    TeacherConfig,
    TrainConfig,
    load_settings,
)
from store.engine import create_engine_for, make_sessionmaker
from store.load import load_dataset
from tests.stream.conftest import kafka, kafka_broker  # noqa: F401 - the real broker for the consumer test

USERS, RECENT, MIN_COUNT = 150, 40, 8


@pytest.fixture(scope="session")
def ml100k_slice() -> Dataset:
    """The first 150 users' last 40 events, items seen at least 8 times (~210 items, ~2,900 events)."""
    try:
        data = open_dataset("ml-100k", load_settings().data_dirs)
    except DatasetNotFound as exc:
        pytest.skip(str(exc))
    users = sorted(data.sequences)[:USERS]
    counts = Counter(item for user in users for item in data.sequences[user][-RECENT:])
    sequences, stamps = {}, {}
    for user in users:
        pairs = [
            (i, t)
            for i, t in zip(data.sequences[user][-RECENT:], data.timestamps[user][-RECENT:], strict=False)
            if counts[i] >= MIN_COUNT
        ]
        sequences[user] = [i for i, _ in pairs]
        stamps[user] = [t for _, t in pairs]
    return Dataset.reindexed("ml-100k-slice", data.items, sequences, stamps)


@pytest.fixture(scope="session")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-encodings")


def tiny_settings(database_url: str, artifact_dir: Path, **jobs: Any) -> Settings:
    """Settings for a refit in seconds; ``jobs`` overrides JobsConfig fields."""
    base: dict[str, Any] = {
        "teacher_epochs": 1,
        "teacher_max_minutes": None,
        "teacher_lr": 3e-3,
        "student_epochs": 20,
        "student_max_minutes": None,
        "valid_users": None,
        "keep_versions": 2,
        "lock_ttl_seconds": 30,
    }
    return Settings(
        database_url=database_url,
        artifact_dir=artifact_dir,
        teacher=TeacherConfig(num_layers=1, max_len=16),
        student=StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=20),
        train=TrainConfig(batch_size=32, lr=1e-2, warmup_steps=5, device="cpu"),
        student_train=TrainConfig(batch_size=32, lr=1e-2, warmup_steps=5, device="cpu"),
        distill=DistillConfig(top_k=20),
        jobs=JobsConfig(**{**base, **jobs}),
    )


@pytest.fixture
def store_engine(database_url: str, ml100k_slice: Dataset) -> Iterator[Engine]:
    """A migrated database holding the slice (items, users, events, sequences)."""
    engine = create_engine_for(database_url)
    load_dataset(make_sessionmaker(engine), ml100k_slice, sequence_length=50, progress=False)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from more threads, and lose a lot when the CPU is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
