"""The served recipe: the settings' distillation (KD + embedding transfer by default) is what
``served_student`` trains, wherever a student is made for serving."""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import DistillConfig, StudentConfig, TrainConfig
from core.training import served


@pytest.mark.parametrize(("distill", "transfers"), [(DistillConfig(), True), (DistillConfig(transfer=False), False)])
def test_the_student_starts_from_the_teacher_as_the_settings_say(
    monkeypatch: pytest.MonkeyPatch, distill: DistillConfig, transfers: bool
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_distill(*args: Any, **kwargs: Any) -> object:
        calls.append(kwargs)
        return trained

    class Teacher:
        def item_embeddings(self) -> Any:
            return type("Table", (), {"shape": (5, 384)})()

    teacher = Teacher()
    trained = type("Result", (), {"model": "student"})()
    monkeypatch.setattr(served, "distill_student", fake_distill)
    result = served.served_student(
        None,  # type: ignore[arg-type]
        StudentConfig(),
        TrainConfig(),
        distill,
        None,  # type: ignore[arg-type]
        teacher,  # type: ignore[arg-type]
        None,
        progress=False,
    )
    (call,) = calls
    assert (call["init_from"] is teacher) is transfers
    assert call["teacher_hidden"] == 384 and result.result is trained and result.text_map is None
    assert DistillConfig().transfer  # the default is the benchmark's choice (quality-amazontoys.md)
