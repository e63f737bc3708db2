"""The cold-start benchmark's split, its exact random baseline, its table scorer and its latency probe plan."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.cold_start_latency import probe_plan, probe_ranks
from bench.cold_start_report import latency_lines, random_metrics
from bench.cold_start_split import cold_split
from bench.cold_start_tables import TableScorer
from core.data.dataset import Dataset, Item
from core.data.split import EvalSet
from core.evaluation.evaluator import rank_targets
from core.models.student import Student
from core.settings import StudentConfig


def _data(users: int = 60, items: int = 40, seed: int = 1) -> Dataset:
    rng = np.random.default_rng(seed)
    sequences = {
        u: [int(i) for i in rng.choice(items, size=rng.integers(3, 9), replace=False) + 1] for u in range(users)
    }
    return Dataset("tiny", {i: Item(i, f"item {i}") for i in range(1, items + 1)}, sequences)


def test_held_out_items_come_last_and_never_reach_training() -> None:
    data = _data()
    split = cold_split(data, share=0.25, seed=3)
    assert split.known == 30 and split.num_items == 40
    assert split.folds.num_items == split.known
    assert all(i <= split.known for seq in split.folds.train.values() for i in seq)
    assert all(i <= split.known for seq in split.folds.valid.inputs for i in seq)
    assert all(t <= split.known for t in split.folds.valid.targets)
    # Renumbering keeps every user's sequence (as titles) and the test set covers all users with 3+ items.
    titles = {item.item_id: item.title for item in split.data.items.values()}
    for user, seq in data.sequences.items():
        assert [titles[i] for i in split.data.sequences[user]] == [f"item {i}" for i in seq]
    assert len(split.folds.test) == sum(len(seq) >= 3 for seq in data.sequences.values())
    cold, warm = split.cold(), split.warm()
    assert len(cold) + len(warm) == len(split.folds.test)
    assert all(t > split.known for t in cold.targets) and all(t <= split.known for t in warm.targets)


def test_random_metrics_are_the_exact_expectation() -> None:
    users = EvalSet([0, 1], [[1, 2, 3], [4]], [5, 6])
    got = random_metrics(20, users, ks=(10,))
    by_hand = [
        (10 / 17, sum(1 / math.log2(r + 2) for r in range(10)) / 17),
        (10 / 19, sum(1 / math.log2(r + 2) for r in range(10)) / 19),
    ]
    assert math.isclose(got["HR@10"], (by_hand[0][0] + by_hand[1][0]) / 2)
    assert math.isclose(got["NDCG@10"], (by_hand[0][1] + by_hand[1][1]) / 2)


def test_table_scorer_ranks_text_items_and_blocks_them_on_request() -> None:
    torch.manual_seed(0)
    student = Student(StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=8, dropout=0.0), num_items=10)
    query = student.eval().encode(student.prepare([[1, 2]]))[0]
    table = torch.cat([student.item_embeddings().detach(), 100 * query.detach().unsqueeze(0)])  # item 11 from text
    users = EvalSet([0], [[1, 2, 11]], [11])  # item 11 in the history is left out of the model's input
    assert int(rank_targets(TableScorer(student, table), EvalSet([0], [[1, 2]], [11]))[0]) == 0
    scores = TableScorer(student, table).score([[1, 2, 11]])
    assert torch.allclose(scores[0, :11], TableScorer(student, table).score([[1, 2]])[0, :11])
    blocked = torch.zeros(12, dtype=torch.bool)
    blocked[11] = True
    assert torch.isneginf(TableScorer(student, table, blocked).score(users.inputs)[0, 11])


def test_probe_ranks_count_the_unseen_items_scored_above_the_probed_one() -> None:
    torch.manual_seed(0)
    student = Student(StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=8, dropout=0.0), num_items=10)
    session = [1, 2]
    query = student.eval().encode(student.prepare([session]))[0].detach()
    table = torch.cat([student.item_embeddings().detach(), 100 * query[None], -100 * query[None]])  # items 11, 12
    scores = table @ query
    unseen_above_12 = int((scores[3:11] > scores[12]).sum())  # items 3..10 (1, 2 seen; 11 above everything)
    assert probe_ranks(student, table, {11: session, 12: session}) == {11: 0, 12: unseen_above_12 + 1}
    # A seen item never counts, however high it scores.
    table[1] = 1000 * query
    assert probe_ranks(student, table, {11: session})[11] == 0


def test_the_probe_plan_times_listed_titled_items_and_publishes_every_id_before_them() -> None:
    held_out = [11, 12, 13, 14, 15, 16]
    ranks = {11: 40, 12: 3, 13: 0, 14: 9, 15: 2, 16: 1}
    listed, probed, published = probe_plan(held_out, ranks, titled={11, 12, 14, 15, 16}, top_k=10, count=2)
    assert listed == [12, 14, 15, 16]  # 13 ranks first but has no title the topic takes
    assert probed == {12, 14}
    assert published == [11, 12, 13, 14]  # dense ids: the untimed ones before the last probed go too
    assert probe_plan(held_out, ranks, titled=set(), top_k=10, count=2) == ([], set(), [])


def test_latency_lines_say_what_was_timed() -> None:
    latency = {
        "held_out": 1192,
        "title_refused": 7,
        "listed_offline": 130,
        "top_k": 10,
        "published": 900,
        "items": 100,
        "found": 98,
        "indexed": 100,
        "indexed_p50_ms": 70.0,
        "indexed_p99_ms": 200.0,
        "timeout_s": 5.0,
        "probe_len": 5,
        "probe_every_ms": 50,
        "p50_ms": 300.0,
        "p99_ms": 600.0,
        "max_ms": 700.0,
    }
    text = " ".join(latency_lines(latency))
    assert "ranks 130 of the 1,192 held-out items in its top 10" in text
    assert "the first 100 of those are timed; the 800 untimed items" in text
    assert "98 of 100 timed items" in text and "p99 600 ms" in text
    assert "7 held-out items have a title the topic contract refuses" in text
    nothing = " ".join(latency_lines(latency | {"items": 0, "found": 0, "published": 0, "indexed": 0}))
    assert "0 of 0 timed items" in nothing and "p99 600" not in nothing
