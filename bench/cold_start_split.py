"""The cold-start split: a random tenth of the items is never seen in training.

The held-out items are renumbered to come last (known items 1..m, held-out m+1..n), as items
published after training would: the models are trained on 1..m only (not even as negatives),
and the held-out items' text stays in the catalogue. Leave-one-out is taken on the full
sequences; every interaction with a held-out item is then removed from training and
validation, and from the histories the models read. Test targets are kept: users whose target
is a held-out item are the cold users, the rest the warm users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from core.data.dataset import Dataset
from core.data.split import EvalSet, LeaveOneOut, leave_one_out


@dataclass(frozen=True)
class ColdSplit:
    data: Dataset
    """The whole catalogue renumbered: known items 1..known, held-out ones after them."""
    known: int
    folds: LeaveOneOut
    """Training and validation over the known items only (``num_items == known``); ``test`` is
    every test user with the full history (held-out items included) and target."""

    @property
    def num_items(self) -> int:
        return self.data.num_items

    def cold(self) -> EvalSet:
        """Test users whose target is a held-out item."""
        return self._test(lambda target: target > self.known)

    def warm(self) -> EvalSet:
        """Test users whose target is a known item."""
        return self._test(lambda target: target <= self.known)

    def _test(self, keep: Callable[[int], bool]) -> EvalSet:
        test = self.folds.test
        rows = [i for i, target in enumerate(test.targets) if keep(target)]
        return test.rows(rows)


def cold_split(data: Dataset, share: float = 0.1, seed: int = 0) -> ColdSplit:
    """Hold out ``share`` of ``data``'s items, drawn at random with ``seed``."""
    rng = np.random.default_rng(seed)
    held = set((rng.choice(data.num_items, size=round(share * data.num_items), replace=False) + 1).tolist())
    order = [i for i in range(1, data.num_items + 1) if i not in held] + sorted(held)
    new_id = {old: new for new, old in enumerate(order, start=1)}
    items = {new_id[old]: replace(item, item_id=new_id[old]) for old, item in data.items.items()}
    sequences = {user: [new_id[i] for i in seq] for user, seq in data.sequences.items()}
    renumbered = Dataset(
        data.name, items, sequences, meta={**data.meta, "cold_share": str(share), "cold_seed": str(seed)}
    )
    known = data.num_items - len(held)
    full = leave_one_out(renumbered)

    def known_only(seq: list[int]) -> list[int]:
        return [i for i in seq if i <= known]

    train = {user: kept for user, seq in full.train.items() if (kept := known_only(seq))}
    rows = [i for i, target in enumerate(full.valid.targets) if target <= known]
    valid = EvalSet(
        [full.valid.users[i] for i in rows],
        [known_only(full.valid.inputs[i]) for i in rows],
        [full.valid.targets[i] for i in rows],
    )
    return ColdSplit(renumbered, known, LeaveOneOut(known, train, valid, full.test))
