"""The quality benchmark's table, learning curves and targets, as Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = ("model", "params (total / non-embedding)", "HR@10", "NDCG@10", "MRR@10", "train time",
           "CPU ms per query, batch 1", "queries/s, batch 256")


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        params = row.get("params")
        cells = [
            row["model"],
            f"{params['total']:,} / {params['non_embedding']:,}" if params else "-",
            f"{row['test']['HR@10']:.4f}", f"{row['test']['NDCG@10']:.4f}", f"{row['test']['MRR@10']:.4f}",
            _minutes(row.get("train_seconds"))
            + (f" ({row['train_cpu_seconds'] / 60:.1f} CPU)" if row.get("train_cpu_seconds") else "")
            + (" (reused)" if row.get("reused") else ""),
            f"{row['speed']['ms_per_query_batch1']:.2f}" if row.get("speed") else "-",
            f"{row['speed']['queries_per_s_batch256']:,.0f}" if row.get("speed") else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve(history: dict[str, Any], metric: str = "NDCG@10") -> str:
    lines = ["| epoch | train loss | valid " + metric + " | elapsed |", "|---|---|---|---|"]
    for rec in history.get("epochs", []):
        value = rec.get("metrics", {}).get(metric)
        lines.append(f"| {rec['epoch']} | {rec['loss']:.4f} | {'-' if value is None else f'{value:.4f}'} "
                     f"| {_minutes(rec['elapsed_s'])} |")
    lines.append(f"\nkept epoch {history.get('best_epoch')}, stopped by: {history.get('stopped')}")
    return "\n".join(lines)


def side_by_side(histories: dict[str, dict[str, Any]], metric: str = "NDCG@10") -> str:
    """Validation curves of several models per epoch, one column each (students: same budget)."""
    names = list(histories)
    values = {name: {rec["epoch"]: rec.get("metrics", {}).get(metric) for rec in (h or {}).get("epochs", [])}
              for name, h in histories.items()}
    epochs = sorted({epoch for curve_ in values.values() for epoch in curve_})
    lines = ["| epoch | " + " | ".join(f"{name}: valid {metric}" for name in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for epoch in epochs:
        cells = [values[name].get(epoch) for name in names]
        lines.append(f"| {epoch} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    return "\n".join(lines)


def targets(rows: dict[str, dict[str, Any]], profile: str) -> list[str]:
    """The issue's targets, each marked met or not (reported, never asserted)."""
    def ndcg(name: str) -> float | None:
        return rows[name]["test"]["NDCG@10"] if name in rows else None

    out = []
    teacher, kd, plain, random_init = (ndcg("teacher"), ndcg("student with KD"), ndcg("student without KD"),
                                       ndcg("teacher, random init"))
    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"
    if teacher is not None:
        note = "" if profile == "full" else " (the target is for the full profile)"
        out.append(f"- teacher NDCG@10 >= 0.19: {teacher:.4f}, {mark(teacher >= 0.19)}{note}")
    if kd is not None and plain is not None:
        gain = (kd / plain - 1) * 100 if plain else float("nan")
        out.append(f"- distilled student >= 0.185: {kd:.4f}, {mark(kd >= 0.185)}")
        out.append(f"- distilled >= 5% above no-KD student: {gain:+.1f}%, {mark(gain >= 5)}")
    if "teacher" in rows and "student with KD" in rows:
        t, s = rows["teacher"], rows["student with KD"]
        if t.get("speed") and s.get("speed"):
            ratio = t["speed"]["ms_per_query_batch1"] / s["speed"]["ms_per_query_batch1"]
            out.append(f"- student >= 10x faster per query on CPU (batch 1): {ratio:.1f}x, {mark(ratio >= 10)}")
        pr = t["params"]["non_embedding"] / s["params"]["non_embedding"]
        out.append(f"- student >= 10x fewer non-embedding params: {pr:.0f}x, {mark(pr >= 10)}")
    if teacher is not None and random_init is not None:
        out.append(f"- pretrained teacher beats its random-init twin: {teacher:.4f} vs {random_init:.4f}, "
                   f"{mark(teacher > random_init)}")
    return out


def write(path_base: Path, markdown: str, payload: dict[str, Any]) -> None:
    path_base.parent.mkdir(parents=True, exist_ok=True)
    path_base.with_suffix(".md").write_text(markdown.rstrip() + "\n")
    path_base.with_suffix(".json").write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
