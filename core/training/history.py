"""What a training run reports: per-epoch loss, validation metrics and elapsed time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    elapsed_s: float
    lr: float
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class History:
    metric: str
    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped: str = "epochs"
    """Why training ended: ``epochs``, ``patience``, ``budget`` or ``schedule``."""
    seconds: float = 0.0

    def curve(self, metric: str | None = None) -> list[tuple[int, float]]:
        """``(epoch, value)`` for every evaluated epoch (a learning curve)."""
        name = metric or self.metric
        return [(rec.epoch, rec.metrics[name]) for rec in self.epochs if name in rec.metrics]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
