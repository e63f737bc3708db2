"""The teacher-dropout selection study (bench.quality_studies) and how the table uses its winner,
on stand-in teachers: what is trained, what wins, and that the winner is the table's teacher."""

from __future__ import annotations

import argparse
from typing import Any

from bench.quality import Bench
from bench.quality_profiles import CPU
from bench.quality_studies import DROPOUTS, Studies
from core.training.history import EpochRecord, History

VALID = {0.1: 0.070, 0.3: 0.078, 0.5: 0.074}
"""Validation NDCG@10 each stand-in teacher reaches, by dropout."""


class FakeBench(Studies):
    """The parts of bench.quality.Bench that the dropout study uses; ``teacher`` records what it
    was asked to train instead of training."""

    def __init__(self, selection: dict[str, Any] | None = None) -> None:
        self.profile = CPU
        self.args = argparse.Namespace(parallel=1)
        self._selection = selection or {}
        self.trained: list[tuple[Any, Any, str]] = []

    def configs(self) -> tuple[Any, Any, dict[str, Any]]:
        return Bench.configs(self)  # type: ignore[arg-type]

    def selection(self) -> dict[str, Any]:
        return self._selection

    def student_recipe(self) -> dict[str, Any]:
        return {}

    def teacher(self, config: Any, train: Any, name: str) -> tuple[None, dict[str, Any]]:
        self.trained.append((config, train, name))
        valid = VALID[config.dropout]
        curve = {1: valid - 0.01, 2: valid, 3: valid - 0.01}  # best at epoch 2, 2 CPU-min in
        history = History(
            "NDCG@10",
            [EpochRecord(e, 5.0, 60.0 * e, 1e-4, 100 * e, {"NDCG@10": v}, 60.0 * e) for e, v in curve.items()],
            best_epoch=2,
            best_metric=valid,
            stopped="patience",
        )
        return None, {"valid": {"NDCG@10": valid}, "history": history.to_dict()}


def test_each_dropout_is_trained_as_the_tables_teacher() -> None:
    bench = FakeBench()
    bench.dropout_study()
    assert [config.dropout for config, _, _ in bench.trained] == list(DROPOUTS)
    for config, train, name in bench.trained:
        # the table's teacher in all but dropout: same name, config and training, so the
        # winner's artifact key is the one the table's main teacher then asks for
        assert name == "teacher" and train == CPU.teacher_train
        assert config.model_copy(update={"dropout": CPU.teacher.dropout}) == CPU.teacher


def test_the_best_validation_wins_and_the_report_says_by_how_much() -> None:
    result = FakeBench().dropout_study()
    assert result["winner"] == 0.3 and result["runner_up"] == 0.5
    assert abs(result["margin"] - 0.004) < 1e-9
    assert result["runs"]["0.3"]["best_epoch"] == 2 and result["runs"]["0.3"]["cpu_min_to_best"] == 2.0
    assert "| 0.3 | 0.0780 | 2 | 3 | patience | 2.0 |" in result["text"]
    assert "Winner: **0.3** by +0.0040 (+5.4%) over 0.5." in result["text"]


def test_the_tables_teachers_take_the_winning_dropout() -> None:
    picked = {"dropout": FakeBench().dropout_study()}
    bench = FakeBench(selection=picked)
    teacher_config, _, _ = bench.configs()
    assert teacher_config.dropout == 0.3
    assert FakeBench().configs()[0].dropout == CPU.teacher.dropout  # no study: the profile's
