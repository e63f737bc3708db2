"""The models of the quality benchmark's table, each trained once and then reused.

Mixed into bench.quality.Bench, which supplies the profile, the folds, ``trained`` (train or
reuse an artifact), ``teacher`` and ``cache`` (teacher scores for the student's windows). Every
method is safe to call in a worker process (bench.quality_parallel): it trains what is missing,
saves it, and the parent later finds and reuses it.
"""

from __future__ import annotations

from typing import Any

from core.models.base import SequenceModel
from core.settings import DistillConfig
from core.training.recipes import distill_student, train_student

ROWS = (
    "popularity",
    "student alone",
    "teacher (pretrained)",
    "teacher (random init)",
    "student + KD",
    "student + KD from random-init teacher",
    "student + embedding transfer",
    "student + KD + transfer",
)
"""The table's rows, in order (names as shown)."""
STUDENTS = ROWS[1:2] + ROWS[4:]
"""The student rows: same architecture, same budget and patience, one learning curve each."""
PLAN: tuple[list[Any], ...] = (
    [[("main_teacher",), ("plain_student",)], ("twin_teacher",)],
    [("kd_student",), ("transfer_student",)],
    [("twin_kd_student",), ("both_student",)],
)
"""Two processes at a time, in phases whose parts depend only on earlier phases: the main
teacher then the student alone (which needs no teacher) beside the random-init twin; then the
main teacher's scores + the KD student beside the transfer student; then the twin's scores + KD
from the twin beside the student with both (it reads the main teacher's scores). A list is run
in turn in one process. When the main teacher is reused (the dropout study trained it), the
student alone trains while the twin does."""


class Models:
    """The table's models (see ``ROWS``); ``*_student`` methods return (model, metadata)."""

    def main_teacher(self) -> tuple[SequenceModel, dict[str, Any]]:
        return self.teacher(self.configs()[0], self.profile.teacher_train, "teacher")

    def twin_teacher(self) -> tuple[SequenceModel, dict[str, Any]]:
        config = self.configs()[0].model_copy(update={"pretrained": False})
        return self.teacher(config, self.profile.teacher_train, "teacher random init")

    def teacher_scores(self, twin: bool = False) -> tuple[Any, float]:
        """The cached scores of the main teacher (or of its random-init twin) and the seconds
        it took to build them."""
        teacher, meta = self.twin_teacher() if twin else self.main_teacher()
        return self.cache(teacher, meta["folder"], keep_hidden=self.configs()[1].hidden_weight > 0)

    def _student_payload(self, **extra: Any) -> dict[str, Any]:
        p = self.profile
        return {"student": p.student.model_dump(), "train": p.student_train.model_dump(), **extra}

    def plain_student(self) -> tuple[SequenceModel, dict[str, Any]]:
        p = self.profile
        return self.trained(
            "student",
            self._student_payload(),
            lambda: train_student(
                self.folds, p.student, self._train(p.student_train), budget_clock=self.args.budget_clock
            ),
        )

    def transfer_student(self) -> tuple[SequenceModel, dict[str, Any]]:
        """The student alone, its item table starting from the main teacher's (PCA-projected)."""
        p = self.profile
        teacher, t_meta = self.main_teacher()
        return self.trained(
            "student transfer",
            self._student_payload(init_from=t_meta["folder"]),
            lambda: train_student(
                self.folds,
                p.student,
                self._train(p.student_train),
                budget_clock=self.args.budget_clock,
                init_from=teacher,
            ),
        )

    def _distilled(
        self, name: str, twin: bool, transfer: bool, distill: DistillConfig | None = None
    ) -> tuple[SequenceModel, dict[str, Any]]:
        """A student trained on a teacher's cached scores (the twin's when ``twin``), its item
        table also starting from the main teacher's when ``transfer``."""
        p = self.profile
        distill = distill or self.configs()[1]
        teacher, t_meta = self.twin_teacher() if twin else self.main_teacher()
        cache, _ = self.cache(teacher, t_meta["folder"], keep_hidden=distill.hidden_weight > 0)
        hidden = teacher.item_embeddings().shape[1]
        init_from = self.main_teacher() if transfer else None
        payload = self._student_payload(distill=distill.model_dump(), teacher=t_meta["folder"])
        if init_from is not None:
            payload["init_from"] = init_from[1]["folder"]
        return self.trained(
            name,
            payload,
            lambda: distill_student(
                self.folds,
                p.student,
                self._train(p.student_train),
                distill,
                cache,
                teacher_hidden=hidden,
                budget_clock=self.args.budget_clock,
                init_from=init_from[0] if init_from else None,
            ),
        )

    def kd_student(self, distill: DistillConfig | None = None) -> tuple[SequenceModel, dict[str, Any]]:
        """KD from the main teacher (``distill``: the selected settings unless given)."""
        return self._distilled("student KD", twin=False, transfer=False, distill=distill)

    def twin_kd_student(self) -> tuple[SequenceModel, dict[str, Any]]:
        """The control: KD with the same settings from the random-init teacher's scores."""
        return self._distilled("student KD random-init teacher", twin=True, transfer=False)

    def both_student(self) -> tuple[SequenceModel, dict[str, Any]]:
        """KD from the main teacher and the item table from its representations."""
        return self._distilled("student KD transfer", twin=False, transfer=True)

    def students(self) -> dict[str, tuple[SequenceModel, dict[str, Any]]]:
        """Every student row, by its shown name."""
        return {
            "student alone": self.plain_student(),
            "student + KD": self.kd_student(),
            "student + KD from random-init teacher": self.twin_kd_student(),
            "student + embedding transfer": self.transfer_student(),
            "student + KD + transfer": self.both_student(),
        }
