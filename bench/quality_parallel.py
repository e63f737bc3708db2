"""Run parts of the quality benchmark in separate single-threaded processes.

On a 2-core machine two independent trainings (say both teachers) run side by side; each
process trains and saves its artifact, and the parent then finds and reuses it. One thread
per process avoids the thread barriers that make multi-threaded torch crawl on a shared CPU.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch


def _part(args: argparse.Namespace, part: str, *params: object) -> None:
    from bench.quality import Bench

    setup(args)
    getattr(Bench(args), part)(*params)


def run_parallel(args: argparse.Namespace, parts: list[str | tuple[Any, ...]]) -> None:
    """Run ``Bench`` methods (name, *params) in separate processes; their artifacts are then
    found and reused by the caller."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(args.parallel, len(parts)),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        calls = [part if isinstance(part, tuple) else (part,) for part in parts]
        for future in [pool.submit(_part, args, *call) for call in calls]:
            future.result()


def setup(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
