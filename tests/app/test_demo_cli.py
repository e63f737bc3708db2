"""``kdrec demo --no-serve``: a second run reuses the stored data and the active models, and a
store that holds another dataset is refused with a clear message."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.app.world import World, build_world, write_dataset


def _env(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)


def test_a_second_run_reuses_data_and_models(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, world)
    result = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "already holds" in result.output and "skipping the load" in result.output
    assert "models: reusing teacher v" in result.output
    table = result.output.split("full ranking over all 40 items")[1]
    assert "popularity" in table and "teacher v" in table and "student v" in table


def test_a_store_holding_another_dataset_is_refused(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(tmp_path / "a", models=False)
    other = write_dataset(tmp_path / "otherflix", seed=1)
    _env(monkeypatch, world)
    monkeypatch.setenv("KDREC_DATASET", str(other))
    result = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert result.exit_code == 1
    assert "holds the dataset 'tinyflix', not 'otherflix'" in result.output
