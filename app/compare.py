"""How much two top-k lists agree: overlap@k, rank-biased overlap and Kendall's tau-b on the union.

* ``overlap_at_k``: the share of the first list's top k that is also in the second's top k.
* ``rank_biased_overlap``: RBO_ext (Webber, Moffat & Zobel 2010, eq. 32) for two lists of the
  same length k with persistence ``p``: agreement at each depth d (overlap of the two top-d
  prefixes / d), weighted geometrically so the top ranks count most, extrapolated past k.
  1 for identical lists, 0 for disjoint ones.
* ``kendall_tau_union``: Kendall's tau-b over the union of both lists, where an item missing
  from a list is placed after all of that list's items (all missing items tied at rank k + 1).
  1 when both order the union the same way, -1 when reversed; None when undefined (fewer than
  two items, or one list ranks all of the union as ties).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations


def overlap_at_k(first: Sequence[int], second: Sequence[int], k: int) -> float:
    if k <= 0:
        raise ValueError("k must be positive")
    return len(set(first[:k]) & set(second[:k])) / k


def rank_biased_overlap(first: Sequence[int], second: Sequence[int], p: float = 0.9) -> float:
    """RBO_ext of two rankings evaluated to depth ``k = min(len(first), len(second))``."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    k = min(len(first), len(second))
    if k == 0:
        return 0.0
    seen_first: set[int] = set()
    seen_second: set[int] = set()
    shared = 0
    weighted = 0.0
    for depth in range(1, k + 1):
        a, b = first[depth - 1], second[depth - 1]
        if a == b:
            shared += 1
        else:
            shared += (a in seen_second) + (b in seen_first)
        seen_first.add(a)
        seen_second.add(b)
        weighted += shared / depth * p**depth
    return shared / k * p**k + (1 - p) / p * weighted


def _ranks(ranking: Sequence[int], items: Sequence[int]) -> list[int]:
    position = {item: rank for rank, item in enumerate(ranking, start=1)}
    missing = len(ranking) + 1
    return [position.get(item, missing) for item in items]


def kendall_tau_union(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Kendall's tau-b of the two rankings over the union of their items (missing = tied last)."""
    union = list(dict.fromkeys([*first, *second]))
    if len(union) < 2:
        return None
    x, y = _ranks(first, union), _ranks(second, union)
    concordant = discordant = ties_x = ties_y = 0
    for i, j in combinations(range(len(union)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue  # tied in both: counts in neither denominator term
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else None
