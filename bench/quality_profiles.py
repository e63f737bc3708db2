"""What each quality-benchmark profile trains (see bench/quality.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.settings import DistillConfig, StudentConfig, TeacherConfig, TrainConfig


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    teacher: TeacherConfig
    teacher_train: TrainConfig
    teacher_windows: str
    student: StudentConfig
    student_train: TrainConfig
    distill: DistillConfig
    teacher_valid_users: int | None
    kd_last: int | None
    """Teacher scores for only the last N positions of each student window (None: all)."""
    kd_last_cloze: int | None
    """The same for a cloze teacher, which needs one forward pass per position."""
    study_teacher: TeacherConfig
    study_teacher_train: TrainConfig
    kd_grid: tuple[tuple[float, float, float], ...]
    """(alpha, temperature, hidden_weight) points of the KD study."""

    @property
    def temperatures(self) -> tuple[float, ...]:
        return tuple(sorted({self.distill.temperature, *(t for _, t, _ in self.kd_grid)}))

    def for_dataset(self, name: str) -> Profile:
        """This profile with the teachers' input capped as ``TEACHER_MAX_LEN`` says for ``name``."""
        cap = TEACHER_MAX_LEN.get(name)
        if cap is None:
            return self

        def capped(config: TeacherConfig) -> TeacherConfig:
            return config.model_copy(update={"max_len": min(config.max_len, cap)})

        return replace(self, teacher=capped(self.teacher), study_teacher=capped(self.study_teacher))

    def scaled(self, factor: float) -> Profile:
        """Every time budget multiplied by ``factor`` (smoke runs)."""

        def s(config: TrainConfig) -> TrainConfig:
            minutes = config.max_minutes * factor if config.max_minutes else None
            return config.model_copy(update={"max_minutes": minutes})

        return replace(
            self,
            teacher_train=s(self.teacher_train),
            student_train=s(self.student_train),
            study_teacher_train=s(self.study_teacher_train),
        )


def _train(**kw: object) -> TrainConfig:
    base = {"epochs": 200, "batch_size": 32, "warmup_steps": 100, "weight_decay": 0.01, "plateau_factor": PLATEAU}
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


PLATEAU = 0.5
"""Every model, teacher or student: an evaluation without improvement halves the learning rate
and goes on from the best weights (``TrainConfig.plateau_factor``). At a constant rate the Toys
teacher peaked at epoch 4 and then overfitted; a rate that decays is what convergence needs, and
one that decays on plateaus does not depend on the time cap."""


TEACHER_MAX_LEN = {"amazon-toys": 50}
"""Items a teacher reads at most, per dataset: on sparse data a longer input buys little (most
histories are a handful of items) and costs a teacher's attention over the few long ones."""
STUDENT = StudentConfig(hidden=64, num_layers=2, num_heads=2, max_len=50, dropout=0.2)
"""The served student (the settings' default); its recipe comes from bench.quality_recipe."""
KD_GRID = ((0.5, 1.0, 0.0), (0.2, 1.0, 0.0), (0.8, 1.0, 0.0), (0.5, 2.0, 0.0), (0.5, 0.5, 0.0))
CPU_KD_GRID = KD_GRID[:3]
"""On a CPU each point costs the table's student budget: alpha around the earlier study's
winner (T 1 beat T 2 and 4 there, by 0.02 NDCG@10)."""

PATIENCE = 5
"""Evaluations without improvement before a student stops: the same for every student."""

CPU = Profile(
    name="cpu",
    summary=(
        "2-core CPU, sized for Amazon Toys (about 90 minutes of wall time on an otherwise idle "
        "machine): every model trains to convergence, early stopping on validation NDCG@10 over all "
        "validation users, the learning rate halved after each evaluation without improvement (from the "
        "best weights so far); the caps (60 CPU-min per teacher, 45 per student) are a safety net. "
        "Independent parts run as two single-threaded processes (bench.quality_models.PLAN) and the "
        "caps count CPU time, so the same compute happens however busy the machine is. The teacher "
        "is MiniLM truncated to 2 of its 6 layers, reading the last 50 items, fine-tuned on every "
        "training item (windows of 50, batches of 32) with patience 3; its random-init twin likewise "
        "(in parallel). 2 layers because convergence has to fit: on Toys one 2-layer epoch is about "
        "1.8 CPU-min, validation included (6 layers: about 3x that), so a teacher that converges in "
        "10 epochs takes about 25 minutes with its patience. Students (2 x 64, last 50 items, batches of 32, lr 2e-3) "
        f"all stop after {PATIENCE} evaluations without improvement; an epoch is about 0.5 CPU-min "
        "alone, 0.7 with KD (teacher scores cached once per teacher: top-100 + the rest of the mass, "
        "about 1 CPU-min). On ML-1M the epochs are about 9x (teacher) and 1.5x (student) longer, so "
        "the caps may bind there: use the full profile on a GPU to converge on ML-1M. Trained models "
        "under var/artifacts/bench are reused, so later runs skip their training."
    ),
    teacher=TeacherConfig(objective="causal", max_len=50, num_layers=2, dropout=0.1),  # the dropout study chooses
    teacher_train=_train(lr=5e-4, patience=3, max_minutes=60.0),
    teacher_windows="all",
    student=STUDENT,
    student_train=_train(lr=2e-3, patience=PATIENCE, max_minutes=45.0),
    distill=DistillConfig(alpha=0.5, temperature=1.0, top_k=100, transfer=False),  # rows choose transfer
    teacher_valid_users=None,
    kd_last=None,
    kd_last_cloze=20,
    study_teacher=TeacherConfig(objective="causal", max_len=50, num_layers=2, dropout=0.1),
    study_teacher_train=_train(lr=5e-4, patience=3, max_minutes=10.0),
    kd_grid=CPU_KD_GRID,
)

FULL = Profile(
    name="full",
    summary=(
        "GPU, trained to convergence: the 6-layer MiniLM teacher reads the last 200 items, "
        "up to 200 epochs with patience 10 on all validation users; random-init twin likewise; "
        "every student to convergence with the same patience (10); KD from the cached top-100 "
        "teacher scores."
    ),
    teacher=TeacherConfig(objective="causal", max_len=200, dropout=0.1),  # the dropout study chooses
    teacher_train=_train(lr=5e-4, patience=10),
    teacher_windows="all",
    student=STUDENT,
    student_train=_train(lr=2e-3, patience=10),
    distill=DistillConfig(alpha=0.5, temperature=1.0, top_k=100, transfer=False),  # rows choose transfer
    teacher_valid_users=None,
    kd_last=None,
    kd_last_cloze=50,
    study_teacher=TeacherConfig(objective="causal", max_len=200, num_layers=6, dropout=0.1),
    study_teacher_train=_train(lr=5e-4, patience=5),
    kd_grid=(*KD_GRID, (0.5, 2.0, 0.5)),
)

PROFILES = {"cpu": CPU, "full": FULL}
