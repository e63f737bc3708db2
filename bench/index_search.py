"""Seen-item exclusion strategies of the flat FAISS index, per query, on one CPU thread.

    .venv/bin/python -m bench.index_search
    .venv/bin/python -m bench.index_search --items 50000 --seen 50 --seen 200

Random item embeddings and queries of the student's size (D=64 by default), each query with
its own set of seen items to exclude (as the stream consumer and the app ask for them), top-10.
Every strategy is exact on a flat index; the table says which is fastest at which batch size,
and checks that they return the same items as ``masked``. Best of ``--repeat`` runs. Writes
bench/results/index-search.md and .json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality_report import write
from core.index import ItemIndex
from core.index.threads import serving_threads

RESULTS = Path(__file__).resolve().parent / "results"
STRATEGIES = ("masked", "overfetch", "selector")


def measure(
    index: ItemIndex, queries: np.ndarray, seen: list[set[int]], strategy: str, k: int, repeat: int
) -> tuple[float, np.ndarray]:
    best, ids = float("inf"), np.empty(0)
    for _ in range(repeat):
        started = time.perf_counter()
        ids = index.search(queries, k, seen, strategy=strategy).ids  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / len(queries), ids


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    embeddings = (rng.standard_normal((args.items + 1, args.dim)) * 0.1).astype(np.float32)
    index = ItemIndex.build(embeddings)
    rows = []
    for seen_size in args.seen or [50, 200]:
        for batch in args.batch or [1, 8, 500]:
            queries = rng.standard_normal((batch, args.dim)).astype(np.float32)
            seen = [
                set(rng.choice(np.arange(1, args.items + 1), size=seen_size, replace=False).tolist())
                for _ in range(batch)
            ]
            row: dict[str, Any] = {"seen": seen_size, "batch": batch}
            reference = None
            for strategy in STRATEGIES:
                us, ids = measure(index, queries, seen, strategy, args.k, args.repeat)
                row[strategy] = round(us, 1)
                reference = ids if reference is None else reference
                row[f"{strategy}_same"] = bool((ids == reference).all())
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"| seen per query | batch | {' | '.join(STRATEGIES)} | same items |",
        "|---:|---:|" + "---:|" * len(STRATEGIES) + "---|",
    ]
    for r in rows:
        fastest = min(STRATEGIES, key=lambda s: r[s])
        cells = [f"**{r[s]}**" if s == fastest else f"{r[s]}" for s in STRATEGIES]
        same = "yes" if all(r[f"{s}_same"] for s in STRATEGIES) else "NO"
        lines.append(f"| {r['seen']} | {r['batch']} | {' | '.join(cells)} | {same} |")
    return (
        f"# Seen-item exclusion on a flat index: microseconds per query\n\n`python -m bench.index_search`: "
        f"{args.items:,} items, D={args.dim}, top-{args.k}, one thread, best of {args.repeat}. Machine: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. `auto` uses `masked` on flat indexes.\n\n"
        + "\n".join(lines)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3416, help="catalogue size (default: ML-1M's)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seen", type=int, action="append", help="seen items per query (repeatable)")
    parser.add_argument("--batch", type=int, action="append", help="queries per call (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    serving_threads(1)
    rows = run(args)
    text = render(rows, args)
    write(RESULTS / "index-search", text, {"rows": rows, "items": args.items, "dim": args.dim, "k": args.k})
    print(text)


if __name__ == "__main__":
    main()
