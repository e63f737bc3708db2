"""Fixtures of the app tests.

``world`` (session): a tiny dataset in a SQLite store with an active teacher and student
(see ``tests.app.world``); ``app_env``: the environment pointing the app at it, with the
Kafka bootstrap address on a port where nothing listens (no broker) unless a test says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.net import free_port
from tests.app.world import World, build_world

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


def point_at(monkeypatch: pytest.MonkeyPatch, world: World, bootstrap: str | None = None) -> None:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KDREC_KAFKA__BOOTSTRAP_SERVERS", bootstrap or f"127.0.0.1:{free_port()}")


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, world: World) -> Iterator[World]:
    point_at(monkeypatch, world)
    yield world
