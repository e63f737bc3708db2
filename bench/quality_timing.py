"""CPU serving cost of a model: ms per query at batch 1 and queries/s at batch 256."""

from __future__ import annotations

import copy
import statistics
import time

import torch

from core.models.base import SequenceModel


@torch.no_grad()
def serving_speed(model: SequenceModel, histories: list[list[int]], single: int = 100,
                  batches: int = 3, batch_size: int = 256) -> dict[str, float]:
    """Encode + score every item (what a request costs), on the CPU, after a warm-up."""
    cpu = copy.deepcopy(model).to("cpu").eval()
    needed = max(single, batches * batch_size)
    histories = (histories * (needed // max(len(histories), 1) + 1))[:needed]
    inputs = [cpu.prepare([h]) for h in histories[:single]]
    for x in inputs[:5]:
        cpu.score(x)
    times = []
    for x in inputs:
        start = time.perf_counter()
        cpu.score(x)
        times.append(time.perf_counter() - start)
    big = [cpu.prepare(histories[i * batch_size:(i + 1) * batch_size]) for i in range(batches)]
    cpu.score(big[0])
    start = time.perf_counter()
    for x in big:
        cpu.score(x)
    elapsed = time.perf_counter() - start
    return {"ms_per_query_batch1": 1000 * statistics.median(times),
            "queries_per_s_batch256": sum(len(x) for x in big) / elapsed,
            "threads": float(torch.get_num_threads())}
