"""Tables of the cold-start benchmark (bench.cold_start): markdown and JSON side by side."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.data.split import EvalSet
from core.distill.text_map.fit import WARM_TOLERANCE


def random_metrics(num_items: int, users: EvalSet, ks: tuple[int, ...] = (10, 20)) -> dict[str, float]:
    """The exact expectation of a uniformly random ranking of each user's unseen items."""
    out: dict[str, float] = {f"HR@{k}": 0.0 for k in ks} | {f"NDCG@{k}": 0.0 for k in ks}
    for history in users.inputs:
        candidates = num_items - len(set(history))
        for k in ks:
            top = min(k, candidates)
            out[f"HR@{k}"] += top / candidates
            out[f"NDCG@{k}"] += sum(1 / math.log2(rank + 2) for rank in range(top)) / candidates
    n = max(len(users), 1)
    return {name: value / n for name, value in out.items()} | {"users": float(len(users))}


def _table(rows: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| model | users | HR@10 | NDCG@10 | HR@20 | NDCG@20 |", "|---|---:|---:|---:|---:|---:|"]
    for name, m in rows.items():
        scores = " | ".join(f"{m[key]:.4f}" for key in ("HR@10", "NDCG@10", "HR@20", "NDCG@20"))
        lines.append(f"| {name} | {int(m['users']):,} | {scores} |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    cold, warm = result["rows"]["cold"], result["rows"]["warm"]
    student_cold = cold["student + text map"]["HR@10"]
    student_warm = warm["student + held-out items from text"]["HR@10"]
    without = warm["student, known items only"]["NDCG@10"]
    with_text = warm["student + held-out items from text"]["NDCG@10"]
    maps = result["text_maps"]
    flags = " --latency" if result.get("latency") else ""
    lines = [
        f"# Cold start on {result['dataset']}: items nobody clicked, from their text alone",
        "",
        f"`python -m bench.cold_start --dataset {result['dataset']}{flags}` (profile {result['profile']}, "
        f"learning-rate plateau factor {result.get('plateau_factor', 0.5)}, "
        f"embedding transfer {result.get('transfer', False)}; "
        "the student is distilled from the teacher as kdrec's served recipe does"
        + (
            ""
            if result.get("transfer")
            else " (which by default also starts the student from the teacher's items, `DistillConfig.transfer`)"
        )
        + "). "
        f"{result['held_out_items']:,} of {result['known_items'] + result['held_out_items']:,} items "
        f"({result['share']:.0%}, seed {result['seed']}) held out: every interaction with them removed from "
        "training, their text kept. Full ranking over all items, leave-one-out test targets, seen items removed. "
        f"Data: {result['data']}.",
        "",
        *_training_line(result.get("training") or {}),
        "## Cold users (test target a held-out item)",
        "",
        *_table(cold),
        "",
        f"Student's cold-user HR@10 is {student_cold / student_warm:.1%} of its warm-user HR@10 "
        f"({student_cold:.4f} / {student_warm:.4f}; target: at least 30%).",
        "",
        "## Warm users (test target a known item)",
        "",
        *_table(warm),
        "",
        f"The held-out items' text vectors change the student's warm-user NDCG@10 by "
        f"{(with_text - without) / without:+.2%} (target: no more than 2% lower).",
        "",
        "Text maps (from the LM's reading of an item's text to a model's item vector: a ridge fit, then optionally "
        "trained to rank against the trained rows on the model's own training positions, then optionally blended with "
        "the similarity-weighted mean of the trained rows of the known items whose text is nearest; every choice made "
        "on validation: the best NDCG@10 of the users whose target is one of the map's own held-out known items, "
        f"keeping the other users within {WARM_TOLERANCE:.0%} of an index without those items): "
        + "; ".join(f"{name}: {_described(m)}" for name, m in maps.items())
        + ".",
    ]
    latency = result.get("latency")
    if latency:
        lines += ["", "## New item -> first recommendation containing it", "", *latency_lines(latency)]
    return "\n".join(lines) + "\n"


def _training_line(training: dict[str, Any]) -> list[str]:
    """How each model's training ended (early stopping or the profile's cap), then a blank line."""
    parts = [
        f"{name}: best epoch {meta.get('best_epoch')}, stopped by {meta.get('stopped')}, "
        f"{(meta.get('train_seconds') or 0) / 60:.0f} min wall"
        for name, meta in training.items()
    ]
    return [f"Training ({'; '.join(parts)}).", ""] if parts else []


def _described(m: dict[str, Any]) -> str:
    """A text map as ``bench.cold_start._describe`` recorded it."""
    score = "n/a" if m["valid_ndcg"] is None else f"{m['valid_ndcg']:.4f}"
    return f"{m['describe']}, validation NDCG@10 of held-out targets {score}"


def latency_lines(latency: dict[str, Any]) -> list[str]:
    found = latency["found"]
    lines = []
    if latency.get("indexed"):
        lines.append(
            f"Publish -> in the serving index (recommendable): {latency['indexed']} of {latency['items']} items, "
            f"p50 {latency['indexed_p50_ms']:.0f} ms, p99 {latency['indexed_p99_ms']:.0f} ms."
        )
    if "listed_offline" in latency:
        lines.append(
            f"Probe: every {latency['probe_every_ms']} ms a new user whose session is the item's "
            f"{latency['probe_len']} nearest known items by text. Offline, with every held-out item's text vector in "
            f"the index, such a session ranks {latency['listed_offline']:,} of the {latency['held_out']:,} held-out "
            f"items in its top {latency['top_k']} (the student predicts what comes next, not what looks alike); "
            f"the first {latency['items']} of those are timed; the {latency['published'] - latency['items']:,} "
            "untimed items among them are published in id order too (ids are dense). "
            f"{latency.get('title_refused', 0)} held-out items have a title the topic contract refuses as it is "
            "(empty or too long): published with a placeholder or cut short, never timed."
        )
    lines += [
        f"{found} of {latency['items']} timed items published one by one to `kdrec.items` on the embedded broker "
        f"reached a probe user's recommendation list within {latency['timeout_s']:.0f} s"
        + (
            "."
            if "listed_offline" in latency
            else f" (probe: a user whose session is the item's {latency['probe_len']} nearest known items by text, "
            f"clicking every {latency['probe_every_ms']} ms)."
        ),
    ]
    if found:
        lines.append(
            f"Publish -> first list containing it: p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms, "
            f"max {latency['max_ms']:.0f} ms (target p99 <= 1 s)."
        )
    return lines


def write(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
