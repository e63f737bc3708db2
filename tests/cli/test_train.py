"""``kdrec train teacher|student`` and ``kdrec evaluate --model``: artifacts, registry, lineage."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from store import registry
from store.engine import create_engine_for, make_sessionmaker
from tests.core.models.factories import GENRES, ITEMS, tiny_sequences

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "toy"
    folder.mkdir()
    with (folder / "items.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sas_item_id", "movielens_id", "title", "year", "genres"])
        for i in range(1, ITEMS + 1):
            writer.writerow([i, 1000 + i, f"Film number {i}", 1950 + i, GENRES[i % len(GENRES)]])
    lines = [" ".join(map(str, [user, *seq])) for user, seq in tiny_sequences(30).items()]
    (folder / "sequences.txt").write_text("\n".join(lines) + "\n")
    return {
        "KDREC_DATABASE_URL": f"sqlite:///{tmp_path / 'kdrec.db'}",
        "KDREC_ARTIFACT_DIR": str(tmp_path / "art"),
        "KDREC_DATASET": str(folder),
        "KDREC_STUDENT__MAX_LEN": "12",
        "KDREC_STUDENT__HIDDEN": "16",
        "KDREC_TRAIN__DEVICE": "cpu",
        "KDREC_TRAIN__BATCH_SIZE": "8",
    }


def test_train_teacher_then_distil_student_then_evaluate(env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "teacher", "--layers", "1", "--max-len", "12", "--epochs", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "registered teacher version 1 (active)" in result.output
    result = runner.invoke(app, ["train", "student", "--epochs", "2", "--alpha", "0.3"], env=env)
    assert result.exit_code == 0, result.output
    assert "registered student version 2 (active)" in result.output

    engine = create_engine_for(env["KDREC_DATABASE_URL"])
    with make_sessionmaker(engine)() as session:
        student = registry.get_active(session, "student")
        assert student is not None and student.parent_id == 1
        assert student.config["distill"]["alpha"] == 0.3 and "NDCG@10" in student.metrics["test"]
        assert (Path(student.artifact_path) / "model.safetensors").is_file()
    engine.dispose()

    result = runner.invoke(
        app, ["evaluate", "--model", "student", "--output", env["KDREC_ARTIFACT_DIR"] + "/e.json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "student v2" in result.output

    result = runner.invoke(app, ["train", "student", "--teacher", "99", "--epochs", "1"], env=env)
    assert result.exit_code == 1 and "model version 99 does not exist" in result.output


def test_student_without_a_teacher_says_how_to_get_one(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["train", "student", "--epochs", "1"], env=env)
    assert result.exit_code == 1 and "kdrec train teacher" in result.output
