"""Render evaluation results as a plain-text table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from core.evaluation.metrics import DEFAULT_KS


def metrics_table(rows: dict[str, dict[str, float]], ks: tuple[int, ...] = DEFAULT_KS) -> str:
    """One row per model, columns HR/NDCG/MRR at each K."""
    columns = [f"{metric}@{k}" for k in ks for metric in ("HR", "NDCG", "MRR")]
    header = f"{'model':<16}" + "".join(f"{c:>10}" for c in columns)
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        lines.append(f"{name:<16}" + "".join(f"{metrics.get(c, float('nan')):>10.4f}" for c in columns))
    return "\n".join(lines)


def write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path
