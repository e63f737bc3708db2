"""k-core filtering for raw interaction data: keep users and items with at least k interactions."""

from __future__ import annotations

from collections import Counter

from core.data.dataset import Dataset


def k_core(dataset: Dataset, k: int = 5) -> Dataset:
    """Repeatedly drop users and items with fewer than ``k`` interactions; re-index items."""
    sequences = {user: list(seq) for user, seq in dataset.sequences.items()}
    times = {user: list(ts) for user, ts in dataset.timestamps.items()} if dataset.timestamps is not None else None
    while True:
        counts = Counter(item for seq in sequences.values() for item in seq)
        changed = False
        for user in list(sequences):
            keep = [i for i, item in enumerate(sequences[user]) if counts[item] >= k]
            if len(keep) != len(sequences[user]):
                changed = True
                sequences[user] = [sequences[user][i] for i in keep]
                if times is not None:
                    times[user] = [times[user][i] for i in keep]
            if len(sequences[user]) < k:
                changed = True
                del sequences[user]
                if times is not None:
                    del times[user]
        if not changed:
            break
    return Dataset.reindexed(dataset.name, dataset.items, sequences, times, meta={**dataset.meta, "k_core": str(k)})
