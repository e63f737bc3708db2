"""Full-ranking evaluation: every item is a candidate, seen items removed, pessimistic ties."""

from core.evaluation.evaluator import Scorer, evaluate
from core.evaluation.metrics import DEFAULT_KS, metrics_from_ranks, target_ranks

__all__ = ["DEFAULT_KS", "Scorer", "evaluate", "metrics_from_ranks", "target_ranks"]
