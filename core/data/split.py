"""Leave-one-out split: the standard protocol for sequential recommendation.

Per user, the last item is the test target, the second to last the validation target, and
everything before is training. Users with fewer than three items only train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.data.dataset import Dataset


@dataclass(frozen=True)
class EvalSet:
    """Inputs (each user's history, oldest first) and the held-out next item to rank."""

    users: list[int]
    inputs: list[list[int]]
    targets: list[int]

    def __len__(self) -> int:
        return len(self.users)

    def head(self, n: int) -> EvalSet:
        return EvalSet(self.users[:n], self.inputs[:n], self.targets[:n])

    def rows(self, rows: Sequence[int] | np.ndarray) -> EvalSet:
        """The users at positions ``rows``, in that order."""
        return EvalSet([self.users[i] for i in rows], [self.inputs[i] for i in rows], [self.targets[i] for i in rows])

    def sample(self, n: int | None, seed: int) -> EvalSet:
        """``n`` users drawn at random without replacement (all when None or ``n >= len``), in
        their order here: the first users of a file are no random sample (they may be the
        oldest, the most active, ...), so choices by validation use this, not ``head``."""
        if n is None or n >= len(self):
            return self
        return self.rows(np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False)))


@dataclass(frozen=True)
class LeaveOneOut:
    """Training sequences plus validation and test evaluation sets."""

    num_items: int
    train: dict[int, list[int]]
    valid: EvalSet
    test: EvalSet

    def train_for_test(self) -> dict[int, list[int]]:
        """Training sequences extended by the validation target (for a final refit)."""
        extended = {user: list(seq) for user, seq in self.train.items()}
        for user, seq, target in zip(self.valid.users, self.valid.inputs, self.valid.targets, strict=False):
            extended[user] = [*seq, target]
        return extended


def leave_one_out(dataset: Dataset) -> LeaveOneOut:
    train: dict[int, list[int]] = {}
    valid = EvalSet([], [], [])
    test = EvalSet([], [], [])
    for user, seq in dataset.sequences.items():
        if len(seq) < 3:
            train[user] = list(seq)
            continue
        train[user] = list(seq[:-2])
        valid.users.append(user)
        valid.inputs.append(list(seq[:-2]))
        valid.targets.append(seq[-2])
        test.users.append(user)
        test.inputs.append(list(seq[:-1]))
        test.targets.append(seq[-1])
    return LeaveOneOut(dataset.num_items, train, valid, test)
