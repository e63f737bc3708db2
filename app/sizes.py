"""Model sizes read from a version's artifact without loading the model, and serving latency."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from core.models.artifacts import WEIGHTS
from store.versions import LoadedVersion


@dataclass(frozen=True)
class ArtifactSize:
    params: int
    non_embedding_params: int
    megabytes: float


def artifact_size(folder: str | Path) -> ArtifactSize | None:
    """Parameters (all, and outside the item/position embedding tables) and the folder's size on disk."""
    folder = Path(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        return None
    total = embedding = 0
    with safe_open(str(weights), framework="pt") as handle:
        names = handle.keys()  # a safetensors handle is not iterable itself
        for name in names:
            count = 1
            for dim in handle.get_slice(name).get_shape():
                count *= int(dim)
            total += count
            if "embedding" in name.split(".")[0]:
                embedding += count
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return ArtifactSize(total, total - embedding, size / 2**20)


def serving_latency_ms(
    loaded: LoadedVersion, histories: list[list[int]], k: int = 10, repeats: int = 30, seed: int = 0
) -> float:
    """Median wall time of one request (encode one session + FAISS top-k), over sampled histories."""
    if not histories:
        return float("nan")
    rng = random.Random(seed)
    sample = [histories[rng.randrange(len(histories))] for _ in range(repeats)]
    loaded.recommend(sample[:1], k)  # warm-up
    times = []
    for history in sample:
        started = time.perf_counter()
        loaded.recommend([history], k)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
