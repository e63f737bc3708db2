"""Student recipe study: which input length, windows, batch size and learning rate learn the
most per CPU-minute. Each recipe trains the default 2 x 64 student alone (no KD) for the same
CPU budget on ML-1M (single-threaded processes, two at a time) and is scored on all validation
users (full ranking); test NDCG@10 is shown for reference only.

    .venv/bin/python -m bench.quality_recipe                # 5 CPU-min per recipe, ~15 min on 2 cores
    .venv/bin/python -m bench.quality_recipe --minutes 10

Writes bench/results/quality-<dataset>-recipe.md and .json. The winner is the student recipe
of the quality benchmark's profiles and of ``Settings.student`` / ``Settings.student_train``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import quality_report as report

RESULTS = Path(__file__).resolve().parent / "results"
RECIPES: tuple[tuple[int, str, int, float], ...] = (
    # (input length, windows, batch size, learning rate)
    (200, "last", 128, 1e-3),  # SASRec's usual ML-1M recipe (kdrec's earlier default)
    (200, "last", 32, 2e-3),
    (200, "last", 16, 2e-3),
    (50, "all", 32, 2e-3),
    (50, "all", 16, 2e-3),
)


def train_one(dataset: str, recipe: tuple[int, str, int, float], minutes: float, seed: int) -> dict[str, Any]:
    """Train one recipe in this (worker) process; its validation and test metrics."""
    import torch

    from core.data.catalog import load_dataset
    from core.data.split import leave_one_out
    from core.evaluation import evaluate
    from core.models.scorer import ModelScorer
    from core.settings import StudentConfig, TrainConfig, load_settings
    from core.training.recipes import train_student

    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s: %(message)s")
    max_len, windows, batch, lr = recipe
    folds = leave_one_out(load_dataset(dataset, load_settings().data_dirs))
    train = TrainConfig(lr=lr, batch_size=batch, max_minutes=minutes, patience=50, seed=seed, device="cpu")
    result = train_student(
        folds,
        StudentConfig(max_len=max_len),
        train,
        windows=windows,  # type: ignore[arg-type]
        progress=False,
        budget_clock="process",
    )
    test = evaluate(ModelScorer(result.model), folds.test)
    return {
        "max_len": max_len,
        "windows": windows,
        "batch_size": batch,
        "lr": lr,
        "valid_ndcg10": result.valid.get("NDCG@10", 0.0),
        "test_ndcg10": test["NDCG@10"],
        "epochs": len(result.history.epochs),
        "steps": result.history.epochs[-1].steps if result.history.epochs else 0,
        "cpu_seconds": result.cpu_seconds,
    }


def render(runs: list[dict[str, Any]], minutes: float, dataset: str) -> str:
    ranked = sorted(runs, key=lambda r: -r["valid_ndcg10"])
    rows = "\n".join(
        f"| {r['max_len']} | {r['windows']} | {r['batch_size']} | {r['lr']:g} | {r['epochs']} | "
        f"{r['steps']:,} | **{r['valid_ndcg10']:.4f}** | {r['test_ndcg10']:.4f} |"
        for r in ranked
    )
    win = ranked[0]
    return (
        f"# Student recipe on {dataset}: what learns most per CPU-minute\n\n"
        f"`python -m bench.quality_recipe --minutes {minutes:g}`: the 2 x 64 student alone (no KD), "
        f"{minutes:g} CPU-minutes each (one thread; the learning rate decays to zero over the budget), "
        "validation NDCG@10 on all users (full ranking, seen items removed); test NDCG@10 for "
        "reference. Windows: `last` = one window per user (its latest items, SASRec), `all` = every "
        "training item is a target once per epoch.\n\n"
        "| input length | windows | batch | lr | epochs | steps | valid NDCG@10 | test NDCG@10 |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|\n"
        + rows
        + f"\n\nWinner: input {win['max_len']}, {win['windows']} windows, batch {win['batch_size']}, "
        f"lr {win['lr']:g}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--minutes", type=float, default=5.0, help="CPU-minutes per recipe")
    parser.add_argument("--parallel", type=int, default=2, help="recipes trained at once (one thread each)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(train_one, args.dataset, recipe, args.minutes, args.seed) for recipe in RECIPES]
        runs = [future.result() for future in futures]
    text = render(runs, args.minutes, args.dataset)
    report.write(
        RESULTS / f"quality-{Path(args.dataset).name.replace('-', '')}-recipe",
        text,
        {"minutes": args.minutes, "runs": runs},
    )
    print(text)


if __name__ == "__main__":
    main()
