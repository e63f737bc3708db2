"""Text neighbours: a new item's vector from the known items whose text reads most like its own.

A linear map from 384 text dimensions to the student's 64 can only say where an item's kind of
text lies on average, and regression shrinks what it is unsure of towards the mean. A new item
whose title names a series, a brand or a character already has known items that read the same,
and their trained rows say where that series sits in the student's space. So this map takes the
``k`` known items nearest by cosine of the LM encodings and returns the softmax(similarity /
temperature)-weighted mean of their trained rows (k-nearest-neighbour regression, as
item-to-item content neighbours impute cold items). The text map blends it with the linear map
by a share chosen on validation (fit.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GRID = ((1, 1.0), (3, 0.02), (3, 0.05), (5, 0.02), (5, 0.05), (10, 0.02), (10, 0.05), (10, 0.1), (30, 0.02), (30, 0.05))
"""(k, temperature) candidates; cosine similarities of one LM's encodings differ by a few hundredths."""
MIXES = ((0.5, 1.0), (0.75, 1.0), (1.0, 0.8), (1.0, 0.9), (1.0, 1.0))
"""(blend, scale): the neighbour vector's share in the blend with the linear map's (1: neighbours
only), and a factor on it: below 1, a new item must read more like a session's items to outrank
the trained rows, which is what keeps it from crowding out good recommendations."""
CHUNK = 4096


def unit(encodings: torch.Tensor) -> torch.Tensor:
    return F.normalize(encodings.to(torch.float32), dim=1)


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
        k = min(self.k, keys.shape[0])
        out = []
        for start in range(0, encodings.shape[0], CHUNK):
            top = (unit(encodings[start : start + CHUNK]) @ keys.T).topk(k, dim=1)
            weights = torch.softmax(top.values / self.temperature, dim=1)
            out.append(self.scale * torch.einsum("nk,nkd->nd", weights, values[top.indices]))
        return torch.cat(out) if out else values.new_zeros(0, values.shape[1])

    def tensors(self) -> dict[str, torch.Tensor]:
        """What the artifact stores: keys in half precision (cosine ranks barely move), rows as they are."""
        return {"neighbour_keys": self.keys.to(torch.float16), "neighbour_values": self.values.to(torch.float32)}


def candidates(
    encodings: torch.Tensor, table: torch.Tensor, train: torch.Tensor, queries: torch.Tensor
) -> Iterator[tuple[int, float, torch.Tensor]]:
    """``(k, temperature, vectors of the query rows)`` for every grid point (scale 1): neighbours
    among the ``train`` rows of ``table`` for the ``queries`` rows (item ids), by their ``encodings``."""
    keys = unit(encodings[train])
    sims = unit(encodings[queries]) @ keys.T
    values = table[train].to(torch.float32)
    most = sims.topk(min(max(k for k, _ in GRID), keys.shape[0]), dim=1)
    for k, temperature in GRID:
        values_k, rows_k = most.values[:, :k], most.indices[:, :k]
        weights = torch.softmax(values_k / temperature, dim=1)
        yield k, temperature, torch.einsum("nk,nkd->nd", weights, values[rows_k])
