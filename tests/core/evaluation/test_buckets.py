"""Head / torso / tail buckets by the target's training count."""

from __future__ import annotations

import numpy as np
import torch

from core.data.dataset import item_counts
from core.evaluation.buckets import metrics_by_bucket, popularity_buckets
from core.evaluation.metrics import metrics_from_ranks


def test_item_counts_count_every_occurrence() -> None:
    counts = item_counts([[1, 2, 2], [3], [2, 1]], num_items=4)
    assert counts.tolist() == [0, 2, 3, 1, 0]


def test_buckets_have_equal_users_ordered_by_target_popularity() -> None:
    counts = np.array([0, 50, 20, 10, 5, 1, 1])
    targets = [5, 1, 3, 2, 6, 4, 1, 2, 5]  # 9 users
    buckets = popularity_buckets(targets, counts)
    assert [len(buckets.rows[name]) for name in ("head", "torso", "tail")] == [3, 3, 3]
    assert sorted(np.concatenate(list(buckets.rows.values())).tolist()) == list(range(9))
    head = {targets[i] for i in buckets.rows["head"]}
    tail = {targets[i] for i in buckets.rows["tail"]}
    assert head <= {1, 2} and tail <= {4, 5, 6}
    assert buckets.count_range["head"][0] >= buckets.count_range["torso"][1] >= buckets.count_range["tail"][1]


def test_bucket_metrics_are_the_metrics_of_their_rows() -> None:
    counts = np.array([0, 9, 5, 1])
    targets = [1, 1, 2, 2, 3, 3]
    ranks = torch.tensor([0, 3, 12, 1, 40, 9])
    by_bucket = metrics_by_bucket(ranks, popularity_buckets(targets, counts), ks=(10,))
    assert by_bucket["head"]["NDCG@10"] == metrics_from_ranks(torch.tensor([0, 3]), (10,))["NDCG@10"]
    assert by_bucket["tail"]["HR@10"] == 0.5 and by_bucket["tail"]["users"] == 2.0
    assert (by_bucket["torso"]["min_count"], by_bucket["torso"]["max_count"]) == (5.0, 5.0)
