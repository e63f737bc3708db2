"""Training: windows of the training sequences, the optimisation loop, early stopping, history."""

from core.training.data import BatchSource, causal_windows, cloze_windows, training_batches
from core.training.history import EpochRecord, History
from core.training.trainer import fit, seed_everything

__all__ = [
    "BatchSource",
    "EpochRecord",
    "History",
    "causal_windows",
    "cloze_windows",
    "fit",
    "seed_everything",
    "training_batches",
]
