"""Training the text map to rank, the way it is served.

Regression onto the trained rows treats every coordinate of an item's vector alike, but serving
only asks that a session's query rank a new item where it belongs among the others. So, from the
ridge start, the map is trained with the student's own objective, softmax cross-entropy on its
training positions (its frozen query before each next item), over the index new items join: in
every batch a random share of the items (``new_share``) is "new", their trained rows replaced
by their mapped text vectors. A position whose target is new teaches the map to find it; every
other one teaches it not to crowd out the trained rows (with only new targets, the maps learned
to outscore every trained row). Only ``weight`` and ``bias`` learn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.models.base import SequenceModel
from core.models.sequences import PAD, left_pad, length_chunks

MAX_POSITIONS = 300_000
"""Training positions kept (a seeded sample): enough for a 384 x 64 map, bounded on large data."""


@dataclass(frozen=True, eq=False)
class Positions:
    """The model's query state before each training target: ``queries [P, D]``, ``targets [P]``."""

    queries: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def where(self, keep: torch.Tensor) -> Positions:
        """Only the positions whose target ``keep[target]`` is True (``keep``: ``[num_items + 1]``)."""
        rows = keep.to(self.targets.device)[self.targets]
        return Positions(self.queries[rows], self.targets[rows])


@torch.no_grad()
def training_positions(
    model: SequenceModel,
    sequences: Sequence[Sequence[int]],
    *,
    max_positions: int = MAX_POSITIONS,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | None = None,
) -> Positions:
    """The query before every next item in each sequence's last ``history_len + 1`` items (a causal
    model reads all of a window's positions in one pass; others encode each prefix), eval mode."""
    model_device = next(model.parameters()).device
    device = device or model_device
    was_training = model.training
    model.eval()
    queries: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    try:
        windows = [list(seq)[-(model.history_len + 1) :] for seq in sequences if len(seq) >= 2]
        if model.objective == "causal":
            for rows in length_chunks([len(w) for w in windows], batch_size):
                inputs = left_pad([windows[i][:-1] for i in rows], model.history_len).to(model_device)
                nexts = left_pad([windows[i][1:] for i in rows], model.history_len).to(model_device)
                states = model.hidden_states(inputs)
                real = nexts != PAD
                queries.append(states[real].to(device, torch.float32))
                targets.append(nexts[real].to(device))
        else:
            prefixes = [(w[:cut], w[cut]) for w in windows for cut in range(1, len(w))]
            for rows in length_chunks([len(p) for p, _ in prefixes], batch_size):
                batch = left_pad([prefixes[i][0] for i in rows], model.history_len).to(model_device)
                queries.append(model.encode(batch).to(device, torch.float32))
                targets.append(torch.as_tensor([prefixes[i][1] for i in rows], device=device))
    finally:
        model.train(was_training)
    if not queries:
        raise ValueError("no sequence has two items: no training position for the text map")
    positions = Positions(torch.cat(queries), torch.cat(targets))
    if len(positions) > max_positions:
        rng = np.random.default_rng(seed)
        keep = torch.as_tensor(np.sort(rng.choice(len(positions), size=max_positions, replace=False)))
        positions = Positions(positions.queries[keep.to(device)], positions.targets[keep.to(device)])
    return positions


def ranking_epochs(
    positions: Positions,
    table: torch.Tensor,
    encodings: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    blocked: torch.Tensor | None = None,
    new_share: float = 0.1,
    lr: float = 1e-3,
    batch_size: int = 512,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Train ``(weight [T, D], bias [D])`` from the given start; yield a copy after every epoch.

    ``table``: the trained rows ``[num_items + 1, D]`` (row 0 padding), the negatives; ``blocked``:
    items left out altogether (held out for validation); ``new_share``: the share of the other
    items that is new in each batch. The caller stops the loop.
    """
    if len(positions) == 0:
        raise ValueError("no training position to fit the text map on")
    if not 0 < new_share < 1:
        raise ValueError(f"new_share must be in (0, 1), not {new_share}")
    device = table.device
    w = weight.detach().to(device, torch.float32).clone().requires_grad_(True)
    b = bias.detach().to(device, torch.float32).clone().requires_grad_(True)
    optimiser = torch.optim.Adam([w, b], lr=lr)
    excluded = torch.zeros(table.shape[0], dtype=torch.bool, device=device)
    excluded[PAD] = True
    if blocked is not None:
        excluded |= blocked.to(device)
    generator = torch.Generator().manual_seed(seed)
    queries, targets = positions.queries.to(device), positions.targets.to(device)
    text = encodings.to(device, torch.float32)
    while True:
        order = torch.randperm(len(positions), generator=generator).to(device)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            q, t = queries[rows], targets[rows]
            new = (torch.rand(table.shape[0], generator=generator).to(device) < new_share) & ~excluded
            columns = new.nonzero().squeeze(1)  # sorted: a new target's place by search
            if len(columns) == 0:
                continue
            with torch.no_grad():
                trained = q @ table.T
                trained[:, new | excluded] = float("-inf")
            mapped = q @ torch.addmm(b, text[columns], w).T
            logits = torch.cat([trained, mapped], dim=1)
            labels = torch.where(new[t], table.shape[0] + torch.searchsorted(columns, t), t)
            loss = F.cross_entropy(logits, labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        yield w.detach().clone(), b.detach().clone()
