"""Text neighbours: a new item's vector from the known items whose text reads most like its own.

A linear map from the LM's text space to the student's much narrower item space can only say
where an item's kind of text lies on average, and regression shrinks what it is unsure of
towards the mean. A new item whose title names a series, a brand or a character already has
known items that read the same, and their trained rows say where that series sits in the
student's space. So this map takes the ``k`` known items nearest by cosine of the LM encodings
and returns the softmax(similarity / temperature)-weighted mean of their trained rows
(k-nearest-neighbour regression, as item-to-item content neighbours impute cold items), times
a scale. The text map blends it with the linear map by a share chosen on validation
(``search`` here, called by fit.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GRID = ((1, 1.0), (3, 0.02), (3, 0.05), (5, 0.02), (5, 0.05), (10, 0.02), (10, 0.05), (10, 0.1), (30, 0.02), (30, 0.05))
"""(k, temperature) candidates (k = 1 takes the nearest item's row: the temperature is moot)."""
MIXES = ((0.5, 1.0), (0.75, 1.0), (1.0, 0.8), (1.0, 0.9), (1.0, 1.0))
"""(blend, scale): the neighbour vector's share in the blend with the linear map's (1: neighbours
only), and a factor on it: below 1, a new item must read more like a session's items to outrank
the trained rows, which is what keeps it from crowding out good recommendations."""
CHUNK = 4096


def unit(encodings: torch.Tensor) -> torch.Tensor:
    return F.normalize(encodings.to(torch.float32), dim=1)


def weighted_rows(
    encodings: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, points: tuple[tuple[int, float], ...]
) -> list[torch.Tensor]:
    """For each ``(k, temperature)`` of ``points``: ``[N, D]``, the softmax(cosine / temperature)-
    weighted mean of the ``values`` of each encoding's ``k`` nearest ``keys`` (unit rows).
    One top-k for all points, in chunks of ``CHUNK`` encodings."""
    most = min(max(k for k, _ in points), keys.shape[0])
    out: list[list[torch.Tensor]] = [[] for _ in points]
    for start in range(0, encodings.shape[0], CHUNK):
        top = (unit(encodings[start : start + CHUNK]) @ keys.T).topk(most, dim=1)
        for n, (k, temperature) in enumerate(points):
            weights = torch.softmax(top.values[:, :k] / temperature, dim=1)
            out[n].append(torch.einsum("nk,nkd->nd", weights, values[top.indices[:, :k]]))
    return [torch.cat(parts) if parts else values.new_zeros(0, values.shape[1]) for parts in out]


@dataclass(frozen=True, eq=False)
class Neighbours:
    """``keys [K, T]``: the known items' unit text encodings; ``values [K, D]``: their rows."""

    keys: torch.Tensor
    values: torch.Tensor
    k: int
    temperature: float
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.keys.ndim != 2 or self.values.ndim != 2 or self.keys.shape[0] != self.values.shape[0]:
            raise ValueError(f"keys {tuple(self.keys.shape)} and values {tuple(self.values.shape)} do not match")
        if self.keys.shape[0] == 0:
            raise ValueError("no known item to take neighbours from")
        if self.k < 1 or self.temperature <= 0 or self.scale <= 0:
            raise ValueError(f"k >= 1, temperature > 0 and scale > 0, not {self.k}, {self.temperature}, {self.scale}")

    @classmethod
    def of(
        cls, encodings: torch.Tensor, rows: torch.Tensor, k: int, temperature: float, scale: float = 1.0
    ) -> Neighbours:
        """Neighbours among ``rows`` (``encodings [K, T]`` of those items, ``rows [K, D]``)."""
        return cls(unit(encodings), rows.to(torch.float32), k, temperature, scale)

    @property
    def text_dim(self) -> int:
        return int(self.keys.shape[1])

    @torch.no_grad()
    def __call__(self, encodings: torch.Tensor) -> torch.Tensor:
        keys = self.keys.to(encodings.device, torch.float32)
        values = self.values.to(encodings.device, torch.float32)
        return self.scale * weighted_rows(encodings, keys, values, ((self.k, self.temperature),))[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        """What the artifact stores: keys in half precision (half the bytes), rows in float32."""
        return {"neighbour_keys": self.keys.to(torch.float16), "neighbour_values": self.values.to(torch.float32)}


@dataclass(frozen=True)
class Candidate:
    k: int
    temperature: float
    scale: float
    min_count: int
    blend: float


def search(
    encodings: torch.Tensor,
    table: torch.Tensor,
    pools: dict[int, torch.Tensor],
    queries: torch.Tensor,
    linear: torch.Tensor,
    estimate: Callable[[torch.Tensor], tuple[float, float]],
) -> Iterator[tuple[Candidate, float, float]]:
    """Every candidate with its ``estimate`` (an index with the ``queries`` items' rows replaced).

    ``pools``: for each minimum count, the item ids neighbours are taken from; ``queries``: the
    item ids to map, whose linear vectors are ``linear``. Grid points with more neighbours than
    a pool holds are skipped (the refitted map, with more items, would read more of them).
    """
    for min_count, pool in pools.items():
        points = tuple((k, t) for k, t in GRID if k <= len(pool))
        if not points:
            continue
        keys, values = unit(encodings[pool]), table[pool].to(torch.float32)
        for (k, temperature), vectors in zip(
            points, weighted_rows(encodings[queries], keys, values, points), strict=True
        ):
            for blend, scale in MIXES:
                mapped = table.clone()
                mapped[queries] = (1 - blend) * linear + blend * scale * vectors
                yield Candidate(k, temperature, scale, min_count, blend), *estimate(mapped)
