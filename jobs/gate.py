"""The quality gate: promote a candidate only if it is not worse than the active version.

Both are evaluated on the same holdout (full ranking); the candidate passes when its metric is
at least the active one's minus ``tolerance``. With nothing active, the first candidate passes.
Either way it must not be worse than the popularity baseline on that holdout (``floor``) by
more than the tolerance: serving a model that loses to "most popular unseen items" helps nobody.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

GATE_METRIC = "NDCG@10"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    candidate: Mapping[str, float],
    active: Mapping[str, float] | None,
    tolerance: float,
    metric: str = GATE_METRIC,
    floor: Mapping[str, float] | None = None,
) -> Decision:
    """Promote or reject ``candidate`` against ``active`` (None: nothing active yet) and the
    ``floor`` baseline (None: no floor)."""
    value = float(candidate.get(metric, float("nan")))
    if not math.isfinite(value):
        return Decision(False, f"candidate {metric} is {value}: not a usable model")
    if floor is not None and math.isfinite(base := float(floor.get(metric, float("nan")))) and value < base - tolerance:
        return Decision(
            False,
            f"candidate {metric} {value:.4f} is below the popularity baseline's {base:.4f} "
            f"(tolerance {tolerance:g}): not worth serving",
        )
    if active is None:
        return Decision(True, f"no active student yet: first candidate promoted ({metric} {value:.4f})")
    baseline = float(active.get(metric, float("nan")))
    if not math.isfinite(baseline):
        return Decision(True, f"the active student has no usable {metric} ({baseline}); candidate {value:.4f}")
    delta = value - baseline
    summary = f"candidate {metric} {value:.4f} vs active {baseline:.4f} ({delta:+.4f}, tolerance {tolerance:g})"
    if delta < -tolerance:
        return Decision(False, f"{summary}: worse than the active student by more than the tolerance")
    return Decision(True, summary)
