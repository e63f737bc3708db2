"""The quality benchmark's table, learning curves and targets, as Markdown and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.evaluation.buckets import BUCKETS, Buckets

COLUMNS = (
    "model",
    "params (total / non-embedding)",
    "HR@10",
    "NDCG@10",
    "MRR@10",
    *(f"NDCG@10 {name}" for name in BUCKETS),
    "train time",
    "CPU-min to best epoch",
    "CPU ms per query, batch 1",
    "queries/s, batch 256",
)
DISTILLED = ("student + KD", "student + embedding transfer", "student + KD + transfer")
"""The students that learn from the pretrained teacher (the KD control learns from its twin)."""


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _train_time(row: dict[str, Any]) -> str:
    if row.get("train_seconds") is None:
        return "-"
    cell = _minutes(row["train_seconds"])
    if row.get("train_cpu_seconds"):
        cell += f" ({row['train_cpu_seconds'] / 60:.1f} CPU)"
    if (row.get("history") or {}).get("stopped") == "budget":
        cell += " (cap hit)"
    return cell + (" (reused)" if row.get("reused") else "")


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for row in rows:
        params, buckets = row.get("params"), row.get("buckets") or {}
        cpu_best = row.get("cpu_seconds_to_best")
        cells = [
            row["model"],
            f"{params['total']:,} / {params['non_embedding']:,}" if params else "-",
            f"{row['test']['HR@10']:.4f}",
            f"{row['test']['NDCG@10']:.4f}",
            f"{row['test']['MRR@10']:.4f}",
            *(f"{buckets[name]['NDCG@10']:.4f}" if "NDCG@10" in buckets.get(name, {}) else "-" for name in BUCKETS),
            _train_time(row),
            "-" if cpu_best is None else f"{cpu_best / 60:.1f}",
            f"{row['speed']['ms_per_query_batch1']:.2f}" if row.get("speed") else "-",
            f"{row['speed']['queries_per_s_batch256']:,.0f}" if row.get("speed") else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bucket_note(buckets: Buckets) -> str:
    parts = [
        f"{name}: {len(buckets.rows[name]):,} users whose target occurs {low:,}-{high:,} times"
        for name, (low, high) in buckets.count_range.items()
    ]
    return (
        "Popularity buckets (equal users, by how often the test target occurs in the training "
        "sequences + validation targets): " + "; ".join(parts) + "."
    )


def curve(history: dict[str, Any], metric: str = "NDCG@10") -> str:
    lines = ["| epoch | train loss | valid " + metric + " | elapsed | CPU |", "|---|---|---|---|---|"]
    for rec in history.get("epochs", []):
        value = rec.get("metrics", {}).get(metric)
        lines.append(
            f"| {rec['epoch']} | {rec['loss']:.4f} | {'-' if value is None else f'{value:.4f}'} "
            f"| {_minutes(rec['elapsed_s'])} | {_minutes(rec.get('cpu_s'))} |"
        )
    lines.append(f"\nkept epoch {history.get('best_epoch')}, stopped by: {history.get('stopped')}")
    return "\n".join(lines)


def side_by_side(histories: dict[str, dict[str, Any]], metric: str = "NDCG@10") -> str:
    """Validation curves of several models per epoch, one column each (students: same budget)."""
    names = list(histories)
    values = {
        name: {rec["epoch"]: rec.get("metrics", {}).get(metric) for rec in (h or {}).get("epochs", [])}
        for name, h in histories.items()
    }
    epochs = sorted({epoch for curve_ in values.values() for epoch in curve_})
    lines = ["| epoch | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for epoch in epochs:
        cells = [values[name].get(epoch) for name in names]
        lines.append(f"| {epoch} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in cells) + " |")
    return "\n".join(lines)


def stops(histories: dict[str, dict[str, Any]]) -> str:
    """Which epoch each model kept and why it stopped."""
    return "\n".join(
        f"- {name}: kept epoch {h.get('best_epoch')} of {len(h.get('epochs', []))}, stopped by {h.get('stopped')}"
        for name, h in histories.items()
    )


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _gain(value: float, base: float) -> float:
    return (value / base - 1) * 100 if base else float("nan")


def targets(rows: dict[str, dict[str, Any]], dataset: str) -> list[str]:
    """The issue's targets for ``dataset``, each marked met or not (reported, never asserted),
    then checks that hold for any data (the KD control, the pretrained teacher vs its twin)."""

    def ndcg(name: str) -> float | None:
        return rows[name]["test"]["NDCG@10"] if name in rows else None

    plain, teacher, twin = ndcg("student alone"), ndcg("teacher (pretrained)"), ndcg("teacher (random init)")
    control = ndcg("student + KD from random-init teacher")
    distilled = {name: ndcg(name) for name in DISTILLED if name in rows}
    valid = {name: (rows[name].get("valid") or {}).get("NDCG@10") or 0.0 for name in distilled}
    best = max(distilled, key=lambda name: valid[name]) if distilled else None  # chosen by validation
    out = []
    if best is not None:
        out.append(
            f"Best distilled student, by validation NDCG@10: **{best}** "
            f"({', '.join(f'{name} {valid[name]:.4f}' for name in distilled)})."
        )
        out.append("")
    if dataset == "amazon-toys":
        if teacher is not None and plain is not None:
            out.append(f"- teacher NDCG@10 >= 0.065: {teacher:.4f}, {_mark(teacher >= 0.065)}")
            out.append(
                f"- teacher >= 10% above the student alone: {_gain(teacher, plain):+.1f}% "
                f"({teacher:.4f} vs {plain:.4f}), {_mark(_gain(teacher, plain) >= 10)}"
            )
        if best is not None and plain is not None:
            b = distilled[best]
            out.append(f"- best distilled student NDCG@10 >= 0.062: {b:.4f}, {_mark(b >= 0.062)}")
            out.append(
                f"- best distilled student >= 10% above the student alone: {_gain(b, plain):+.1f}% "
                f"({b:.4f} vs {plain:.4f}), {_mark(_gain(b, plain) >= 10)}"
            )
            if control is not None:
                out.append(
                    f"- best distilled student above KD from the random-init teacher: {b:.4f} vs "
                    f"{control:.4f}, {_mark(b > control)}"
                )
    elif dataset == "ml-1m":
        if best is not None and plain is not None:
            b = distilled[best]
            out.append(
                f"- best distilled student no worse than the student alone: {b:.4f} vs {plain:.4f} "
                f"({_gain(b, plain):+.1f}%), {_mark(b >= plain)}"
            )
            out.append(f"- best distilled student NDCG@10 >= 0.19: {b:.4f}, {_mark(b >= 0.19)}")
    else:
        out.append(f"- no targets are set for {dataset}; the checks below hold for any data")
    teacher_row, student_row = rows.get("teacher (pretrained)"), rows.get(best) if best else None
    if teacher_row and student_row and teacher_row.get("speed") and student_row.get("speed"):
        ratio = teacher_row["speed"]["ms_per_query_batch1"] / student_row["speed"]["ms_per_query_batch1"]
        out.append(
            f"- student >= 10x faster than the teacher per query on CPU (batch 1): {ratio:.1f}x, {_mark(ratio >= 10)}"
        )
    if teacher_row and student_row and teacher_row.get("params") and student_row.get("params"):
        pr = teacher_row["params"]["non_embedding"] / student_row["params"]["non_embedding"]
        out.append(f"- student >= 10x fewer non-embedding params: {pr:.0f}x, {_mark(pr >= 10)}")
    kd = ndcg("student + KD")
    if kd is not None and control is not None and plain is not None:
        share = (
            f"; {(kd - control) / (kd - plain) * 100:.0f}% of KD's gain needs the pretrained LM" if kd > plain else ""
        )
        out.append(
            f"- KD from the pretrained teacher beats KD from its random-init twin: {kd:.4f} vs "
            f"{control:.4f} (student alone {plain:.4f}: KD {kd - plain:+.4f}, from the twin "
            f"{control - plain:+.4f}{share}), {_mark(kd > control)}"
        )
    if teacher is not None and twin is not None:
        out.append(
            f"- pretrained teacher beats its random-init twin: {teacher:.4f} vs {twin:.4f}, {_mark(teacher > twin)}"
        )
    return out


def write(path_base: Path, markdown: str, payload: dict[str, Any]) -> None:
    path_base.parent.mkdir(parents=True, exist_ok=True)
    path_base.with_suffix(".md").write_text(markdown.rstrip() + "\n")
    path_base.with_suffix(".json").write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
