"""A tiny, fully built kdrec world for the app and demo tests.

``build_world(root)`` writes a 40-film dataset (sequences.txt + items.csv), loads it into a
fresh SQLite store and trains + publishes an active teacher (the real MiniLM, one layer) and a
student distilled from it, through ``cli.demo_models.ensure_models`` with a tiny profile.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from cli.demo_models import QuickProfile, ensure_models
from core.data.catalog import load_dataset as open_dataset
from core.settings import DistillConfig, Settings, StudentConfig, TeacherConfig, TrainConfig
from store.engine import create_engine_for, make_sessionmaker
from store.load import load_dataset
from store.migrate import upgrade

FILMS = [
    "Toy Story",
    "GoldenEye",
    "Four Rooms",
    "Get Shorty",
    "Copycat",
    "Twelve Monkeys",
    "Babe",
    "Dead Man Walking",
    "Richard III",
    "Seven",
    "The Usual Suspects",
    "Mighty Aphrodite",
    "Postino",
    "Braveheart",
    "Taxi Driver",
    "Apollo 13",
    "Batman Forever",
    "Belle de jour",
    "Crumb",
    "Desperado",
    "Doom Generation",
    "Mad Love",
    "Clueless",
    "Heat",
    "Sabrina",
    "Casino",
    "Sense and Sensibility",
    "Cyclo",
    "Jumanji",
    "Nixon",
    "Othello",
    "Persuasion",
    "Powder",
    "Rumble in the Bronx",
    "Waiting to Exhale",
    "Dangerous Minds",
    "Twister",
    "Fargo",
    "Star Wars",
    "Alien",
]
GENRES = ["Drama", "Comedy", "Thriller", "Animation", "Action"]
USERS = 30
NAME = "tinyflix"


@dataclass(frozen=True)
class World:
    root: Path
    dataset_dir: Path
    database_url: str
    artifact_dir: Path

    def env(self) -> dict[str, str]:
        """The KDREC_ variables that point a process at this world."""
        return {
            "KDREC_DATABASE_URL": self.database_url,
            "KDREC_ARTIFACT_DIR": str(self.artifact_dir),
            "KDREC_DATASET": str(self.dataset_dir),
            "KDREC_DATA_DIRS": f'["{self.root}"]',
            "KDREC_DOWNLOAD_DIR": str(self.root / "downloads"),
        }

    def settings(self) -> Settings:
        return Settings(
            database_url=self.database_url,
            artifact_dir=self.artifact_dir,
            dataset=str(self.dataset_dir),
            data_dirs=(self.root,),
        )


def write_dataset(folder: Path, seed: int = 0) -> Path:
    """40 films; each user watches a run of consecutive films (a learnable next-item pattern)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["sas_item_id,movielens_id,title,year,genres"]
    lines += [f"{i},{i},{film},{1990 + i % 10},{GENRES[i % len(GENRES)]}" for i, film in enumerate(FILMS, start=1)]
    (folder / "items.csv").write_text("\n".join(lines) + "\n")
    rng = random.Random(seed)
    rows = []
    for user in range(1, USERS + 1):
        start, length = rng.randint(1, len(FILMS)), rng.randint(6, 14)
        rows.append(" ".join(str(x) for x in [user, *((start + step - 1) % len(FILMS) + 1 for step in range(length))]))
    (folder / "sequences.txt").write_text("\n".join(rows) + "\n")
    return folder


def tiny_profile() -> QuickProfile:
    train = TrainConfig(epochs=1, batch_size=16, warmup_steps=2, device="cpu", patience=1)
    return QuickProfile(
        teacher=TeacherConfig(num_layers=1, max_len=12, dropout=0.1),
        teacher_train=train,
        student=StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=12),
        student_train=train.model_copy(update={"epochs": 2}),
        distill=DistillConfig(top_k=10),
        valid_users=None,
    )


def empty_world(root: Path) -> World:
    root.mkdir(parents=True, exist_ok=True)
    return World(root, write_dataset(root / NAME), f"sqlite:///{root / 'kdrec.db'}", root / "artifacts")


def build_world(root: Path, models: bool = True) -> World:
    """The dataset loaded into a fresh store; with ``models``, an active teacher and student."""
    world = empty_world(root)
    config = world.settings()
    data = open_dataset(str(world.dataset_dir), config.data_dirs)
    engine = create_engine_for(world.database_url)
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        load_dataset(sessions, data, sequence_length=config.sequence_length, progress=False)
        if models:
            ensure_models(config, data, sessions, tiny_profile())
    finally:
        engine.dispose()
    return world
