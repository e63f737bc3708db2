"""Leave-one-out split and k-core filtering."""

from __future__ import annotations

from core.data.dataset import Dataset, Item
from core.data.kcore import k_core
from core.data.split import leave_one_out


def _dataset(sequences: dict[int, list[int]], num_items: int) -> Dataset:
    items = {i: Item(i, f"movie {i}") for i in range(1, num_items + 1)}
    return Dataset("toy", items, sequences)


def test_leave_one_out_holds_out_last_two_items():
    folds = leave_one_out(_dataset({1: [1, 2, 3, 4], 2: [4, 3, 2], 3: [1, 2]}, 4))
    assert folds.train == {1: [1, 2], 2: [4], 3: [1, 2]}
    assert (folds.valid.users, folds.valid.inputs, folds.valid.targets) == ([1, 2], [[1, 2], [4]], [3, 3])
    assert (folds.test.users, folds.test.inputs, folds.test.targets) == ([1, 2], [[1, 2, 3], [4, 3]], [4, 2])
    # users with fewer than three items only train
    assert 3 not in folds.test.users
    assert folds.train_for_test() == {1: [1, 2, 3], 2: [4, 3], 3: [1, 2]}


def test_k_core_drops_rare_items_and_short_users_until_stable():
    # item 9 appears once; removing it leaves user 3 with one item, which drops item 1's count
    data = _dataset({1: [1, 2, 3], 2: [1, 2, 3], 3: [9, 1]}, 9)
    filtered = k_core(data, k=2)
    assert filtered.num_users == 2
    assert filtered.num_items == 3
    assert sorted(filtered.sequences.values()) == [[1, 2, 3], [1, 2, 3]]
    assert filtered.meta["k_core"] == "2"


def test_events_use_position_as_time_without_timestamps():
    data = _dataset({7: [3, 1]}, 3)
    assert list(data.events()) == [(7, 0, 3, 0), (7, 1, 1, 1)]
