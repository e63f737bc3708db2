"""A first look before the full quality table: the models the benchmark has trained so far.

    .venv/bin/python -m bench.quality_peek --dataset amazon-toys

Trains (or reuses) the profile's student alone, then ranks it and every teacher of the
selection studies (and of the table, which the dropout study trains) found under
var/artifacts/bench/<dataset> on the test targets: full ranking,
leave-one-out, seen items removed, overall and by head / torso / tail of the target's
popularity. Writes bench/results/quality-<dataset>-peek.md and .json. The studies chose by
validation; this only reports test, and the studies' teachers ran at the study's short budget,
so the table says how far each got, not what a converged model reaches (that is
``bench.quality``'s table).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from bench import quality_report as report
from bench.quality import Bench
from bench.quality_parallel import setup
from core.evaluation.buckets import BUCKETS
from core.models.artifacts import load_model, read_metrics
from core.models.scorer import ModelScorer

log = logging.getLogger("bench.quality_peek")


def _line(row: dict[str, Any]) -> str:
    history = row.get("history") or {}
    cpu = row["cpu_seconds_to_best"]
    return (
        f"| {row['model']} | {row['test']['HR@10']:.4f} | **{row['test']['NDCG@10']:.4f}** | "
        + " | ".join(f"{row['buckets'][b]['NDCG@10']:.4f}" for b in BUCKETS)
        + f" | {(row.get('valid') or {}).get('NDCG@10', 0):.4f} | {len(history.get('epochs', []))}"
        f" | {history.get('stopped') or '-'} | {'-' if cpu is None else f'{cpu / 60:.1f}'} |"
    )


def _teacher_name(folder: Path, model: Any) -> str:
    """A study teacher by its folder's name; a table teacher (the dropout study trains those) by
    its start and dropout."""
    if folder.name.startswith("study-"):
        return f"teacher ({folder.name.rsplit('-', 1)[0]})"
    start = "pretrained" if model.config.pretrained else "random init"
    return f"teacher ({start}, dropout {model.config.dropout}, trained as the table's)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-toys")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    cli = parser.parse_args()
    args = argparse.Namespace(
        profile=cli.profile,
        device="cpu",
        dataset=cli.dataset,
        study="none",
        retrain=False,
        users=0,
        scale=1.0,
        threads=cli.threads,
        budget_clock="process",
        out=None,
        parallel=1,
    )
    setup(args)
    bench = Bench(args)
    folds, buckets = bench.folds, bench.buckets
    rows = []
    for folder in sorted([*bench.artifacts.glob("study-teacher-*"), *bench.artifacts.glob("teacher-*")]):
        if (folder / "model.safetensors").is_file():
            model = load_model(folder, "cpu")
            rows.append(bench.row(_teacher_name(folder, model), ModelScorer(model), model, read_metrics(folder)))
    student, meta = bench.plain_student()
    rows.append(bench.row("student alone (profile recipe, to convergence)", ModelScorer(student), student, meta))
    lines = [
        f"# First look on {bench.data.name}: test targets of the models trained so far",
        "",
        f"`python -m bench.quality_peek --dataset {cli.dataset}` (profile {cli.profile}). Full ranking over "
        f"all {folds.num_items:,} items, leave-one-out, seen items removed; {len(folds.test):,} test users. "
        "Teachers: the selection studies' (chosen on validation; `study-` ones stopped by their short budget, "
        "the table's trained to convergence). Buckets: "
        + ", ".join(f"{b} = targets seen {lo}-{hi} times" for b, (lo, hi) in buckets.count_range.items())
        + ".",
        "",
        "| model | test HR@10 | test NDCG@10 | NDCG@10 head | torso | tail | valid NDCG@10 | epochs | stopped by"
        " | CPU-min to best epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_line(row) for row in rows]
    out = Path(__file__).resolve().parent / "results" / f"quality-{Path(cli.dataset).name.replace('-', '')}-peek"
    report.write(out, "\n".join(lines), {"rows": rows, "buckets": buckets.count_range})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
