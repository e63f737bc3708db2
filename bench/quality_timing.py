"""CPU serving cost of each model: ms per query at batch 1 and queries/s at batch 256.

What a request costs: encode the history and score every item. The machine may be shared,
so models are measured in alternating rounds and each keeps its best round (the least
disturbed one); every model sees the same histories.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from core.models.base import SequenceModel


@torch.no_grad()
def _once(model: SequenceModel, singles: list[torch.Tensor], big: list[torch.Tensor]) -> tuple[float, float]:
    times = []
    for x in singles:
        start = time.perf_counter()
        model.score(x)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for x in big:
        model.score(x)
    return 1000 * statistics.median(times), sum(len(x) for x in big) / (time.perf_counter() - start)


@torch.no_grad()
def serving_speeds(
    models: dict[str, SequenceModel],
    histories: list[list[int]],
    rounds: int = 3,
    single: int = 100,
    batches: int = 2,
    batch_size: int = 256,
) -> dict[str, dict[str, float]]:
    needed = max(single, batches * batch_size)
    histories = (histories * (needed // max(len(histories), 1) + 1))[:needed]
    cpu = {name: copy.deepcopy(model).to("cpu").eval() for name, model in models.items()}
    inputs = {
        name: (
            [m.prepare([h]) for h in histories[:single]],
            [m.prepare(histories[i * batch_size : (i + 1) * batch_size]) for i in range(batches)],
        )
        for name, m in cpu.items()
    }
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for name, model in cpu.items():
            singles, big = inputs[name]
            for x in singles[:5]:
                model.score(x)
            ms, qps = _once(model, singles, big)
            entry = best.setdefault(name, {"ms_per_query_batch1": ms, "queries_per_s_batch256": qps})
            entry["ms_per_query_batch1"] = min(entry["ms_per_query_batch1"], ms)
            entry["queries_per_s_batch256"] = max(entry["queries_per_s_batch256"], qps)
    for entry in best.values():
        entry["threads"] = float(torch.get_num_threads())
    return best
