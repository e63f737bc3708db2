"""What a training run reports: per-epoch loss, validation metrics, wall and CPU time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    elapsed_s: float
    lr: float
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    cpu_s: float | None = None
    """CPU time of this process (all threads) since training started, validation included;
    None in histories saved before it was recorded."""


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

    def best_record(self) -> EpochRecord | None:
        """The record of the epoch whose weights were kept (None when there is none)."""
        return next((rec for rec in self.epochs if rec.epoch == self.best_epoch), None)

    def cpu_seconds_to_best(self) -> float | None:
        """CPU seconds from the start of training to the end of the kept epoch: what the model
        cost to train, however long early stopping then waited. None when not recorded."""
        best = self.best_record()
        return None if best is None else best.cpu_s

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The inverse of ``to_dict``; also reads histories saved before ``cpu_s`` existed."""
        known = {f.name for f in fields(EpochRecord)}
        try:
            epochs = []
            for rec in data.get("epochs", []):
                unknown = set(rec) - known
                if unknown:
                    raise ValueError(f"unknown epoch record fields {sorted(unknown)}")
                epochs.append(EpochRecord(**rec))
            return cls(**{**data, "epochs": epochs})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a training history ({exc})") from exc
