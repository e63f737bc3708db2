"""A first look before the full quality table: the models the benchmark has trained so far.

    .venv/bin/python -m bench.quality_peek --dataset amazon-toys

Trains (or reuses) the profile's student alone, then ranks it and every teacher of the
selection studies found under var/artifacts/bench/<dataset> on the test targets: full ranking,
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
from core.evaluation.buckets import BUCKETS, item_counts, metrics_by_bucket, popularity_buckets
from core.evaluation.evaluator import rank_targets
from core.evaluation.metrics import metrics_from_ranks
from core.models.artifacts import load_model, read_metrics
from core.models.base import SequenceModel
from core.models.scorer import ModelScorer
from core.training.history import History

log = logging.getLogger("bench.quality_peek")


def _row(name: str, model: SequenceModel, meta: dict[str, Any], bench: Bench, buckets: Any) -> dict[str, Any]:
    ranks = rank_targets(ModelScorer(model), bench.folds.test)
    by_bucket = metrics_by_bucket(ranks, buckets)
    history = meta.get("history") or {}
    cpu = History.from_dict(history).cpu_seconds_to_best() if history else None
    return {
        "model": name,
        "test": metrics_from_ranks(ranks),
        "buckets": {b: by_bucket[b].get("NDCG@10") for b in BUCKETS},
        "valid": (meta.get("valid") or {}).get("NDCG@10"),
        "epochs": len(history.get("epochs", [])),
        "stopped": history.get("stopped"),
        "cpu_min_to_best": None if cpu is None else cpu / 60,
    }


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
    folds = bench.folds
    buckets = popularity_buckets(folds.test.targets, item_counts(folds.train_for_test().values(), folds.num_items))
    rows = []
    for folder in sorted(bench.artifacts.glob("study-teacher-*")):
        if (folder / "model.safetensors").is_file():
            rows.append(
                _row(
                    f"teacher ({folder.name.rsplit('-', 1)[0]})",
                    load_model(folder, "cpu"),
                    read_metrics(folder),
                    bench,
                    buckets,
                )
            )
    student, meta = bench.plain_student()
    rows.append(_row("student alone (profile recipe, to convergence)", student, meta, bench, buckets))
    lines = [
        f"# First look on {bench.data.name}: test targets of the models trained so far",
        "",
        f"`python -m bench.quality_peek --dataset {cli.dataset}` (profile {cli.profile}). Full ranking over "
        f"all {folds.num_items:,} items, leave-one-out, seen items removed; {len(folds.test):,} test users. "
        "Teachers: the selection study's (chosen on validation; stopped by its short budget). Buckets: "
        + ", ".join(f"{b} = targets seen {lo}-{hi} times" for b, (lo, hi) in buckets.count_range.items())
        + ".",
        "",
        "| model | test HR@10 | test NDCG@10 | NDCG@10 head | torso | tail | valid NDCG@10 | epochs | stopped by"
        " | CPU-min to best epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = "-" if r["cpu_min_to_best"] is None else f"{r['cpu_min_to_best']:.1f}"
        lines.append(
            f"| {r['model']} | {r['test']['HR@10']:.4f} | **{r['test']['NDCG@10']:.4f}** | "
            + " | ".join(f"{r['buckets'][b]:.4f}" for b in BUCKETS)
            + f" | {r['valid'] or 0:.4f} | {r['epochs']} | {r['stopped'] or '-'} | {cpu} |"
        )
    out = Path(__file__).resolve().parent / "results" / f"quality-{Path(cli.dataset).name.replace('-', '')}-peek"
    report.write(out, "\n".join(lines), {"rows": rows, "buckets": buckets.count_range})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
