"""Artifacts load without unpickling anything, and refuse what they do not understand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.models.artifacts import ArtifactError, load_model, read_metrics, save_model
from core.models.student import Student
from tests.core.models.factories import ITEMS, student_config


def test_metrics_and_config_round_trip(tmp_path: Path) -> None:
    model = Student(student_config(), ITEMS)
    folder = save_model(model, tmp_path / "a", metrics={"NDCG@10": 0.25}, extra={"dataset": "toy"})
    assert read_metrics(folder) == {"NDCG@10": 0.25}
    config = json.loads((folder / "config.json").read_text())
    assert config["spec"]["kind"] == "student" and config["extra"] == {"dataset": "toy"}


def test_load_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = save_model(Student(student_config(), ITEMS), tmp_path / "a")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load must not be used for weights")

    monkeypatch.setattr(torch, "load", forbidden)
    load_model(folder)


def test_unknown_kind_and_missing_folder_are_clear_errors(tmp_path: Path) -> None:
    folder = save_model(Student(student_config(), ITEMS), tmp_path / "a")
    config = json.loads((folder / "config.json").read_text())
    config["spec"]["kind"] = "mystery"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="mystery"):
        load_model(folder)
    with pytest.raises(ArtifactError, match="not a model artifact"):
        load_model(tmp_path / "nothing")
