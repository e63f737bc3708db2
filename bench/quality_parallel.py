"""Run parts of the quality benchmark in separate single-threaded processes.

On a 2-core machine two independent trainings (say both teachers) run side by side; each
process trains and saves its artifact, and the parent then finds and reuses it. One thread
per process avoids the thread barriers that make multi-threaded torch crawl on a shared CPU.
A part is a ``Bench`` method call, ``(name, *params)`` or just the name, or a list of calls
that one process makes in turn (a later one may use what an earlier one trained).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch

Call = str | tuple[Any, ...]


def _part(args: argparse.Namespace, calls: list[tuple[Any, ...]]) -> None:
    from bench.quality import Bench

    setup(args)
    bench = Bench(args)
    for name, *params in calls:
        getattr(bench, name)(*params)


def run_parallel(args: argparse.Namespace, parts: list[Call | list[Call]]) -> None:
    """Run ``Bench`` method calls in separate processes, ``args.parallel`` at a time; their
    artifacts are then found and reused by the caller. A worker's error is raised here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    def calls(part: Call | list[Call]) -> list[tuple[Any, ...]]:
        return [c if isinstance(c, tuple) else (c,) for c in (part if isinstance(part, list) else [part])]

    with ProcessPoolExecutor(
        max_workers=min(args.parallel, len(parts)), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        for future in [pool.submit(_part, args, calls(part)) for part in parts]:
            future.result()


def setup(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
