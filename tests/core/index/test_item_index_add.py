"""Growing a live index with ``ItemIndex.with_items``: a new object, dense ids, every strategy,
replacement, and a session recommender that keeps unknown ids out of the encoder."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.index import ItemIndex, SessionRecommender
from tests.core.index.helpers import assert_same_top_k, brute_force

NUM_ITEMS, DIM, ADDED = 300, 16, 5


@pytest.fixture(scope="module")
def embeddings() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((NUM_ITEMS + 1, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def extra() -> np.ndarray:
    return np.random.default_rng(6).standard_normal((ADDED, DIM)).astype(np.float32) * 1.5


def grown_ids() -> np.ndarray:
    return np.arange(NUM_ITEMS + 1, NUM_ITEMS + ADDED + 1, dtype=np.int64)


@pytest.mark.parametrize("strategy", ["auto", "masked", "overfetch", "selector"])
def test_added_items_are_searched_like_built_ones(embeddings: np.ndarray, extra: np.ndarray, strategy: str) -> None:
    old = ItemIndex.build(embeddings, model_version=7)
    old.search(np.ones((2, DIM), dtype=np.float32), 5, [set(), {1}], strategy="masked")  # warms old's dense cache
    new = old.with_items(grown_ids()[::-1].copy(), extra[::-1].copy())  # any order
    assert new is not old and new.num_items == new.index.ntotal == NUM_ITEMS + ADDED
    assert (new.kind, new.model_version, new.dim) == ("flat", 7, DIM)
    assert old.num_items == old.index.ntotal == NUM_ITEMS  # untouched
    full = np.concatenate([embeddings, extra])
    rng = np.random.default_rng(1)
    queries = np.concatenate([extra[:3] * 4, rng.standard_normal((20, DIM)).astype(np.float32)])
    seen = [{NUM_ITEMS + 1 + (row + 1) % ADDED, int(rng.integers(1, NUM_ITEMS))} for row in range(len(queries))]
    result = new.search(queries, 10, seen, strategy=strategy)  # type: ignore[arg-type]
    assert_same_top_k(result, *brute_force(queries, full, 10, seen), queries, full)
    assert result.ids[0][0] == NUM_ITEMS + 1 and NUM_ITEMS + 2 not in result.ids[0]  # found; excluded when seen
    assert result.ids.max() <= NUM_ITEMS + ADDED
    old_result = old.search(queries, 10, seen, strategy=strategy)  # type: ignore[arg-type]
    assert old_result.ids.max() <= NUM_ITEMS


def test_present_ids_are_replaced_and_new_ones_appended(embeddings: np.ndarray, extra: np.ndarray) -> None:
    first = ItemIndex.build(embeddings).with_items(grown_ids()[:3], extra[:3])
    replaced = first.with_items(np.array([NUM_ITEMS + 2, NUM_ITEMS + 4]), np.stack([-extra[1], extra[3]]))
    assert replaced.num_items == replaced.index.ntotal == NUM_ITEMS + 4
    full = np.concatenate([embeddings, extra[:1], -extra[1:2], extra[2:4]])
    queries = np.concatenate([-extra[1:2] * 3, extra[1:2] * 3, extra[3:4] * 3])
    for strategy in ("masked", "overfetch", "selector"):
        result = replaced.search(queries, 8, [set(), set(), {1}], strategy=strategy)
        assert_same_top_k(result, *brute_force(queries, full, 8, [set(), set(), {1}]), queries, full)
    assert result.ids[0][0] == NUM_ITEMS + 2 and NUM_ITEMS + 2 not in result.ids[1][:3]
    assert first.num_items == NUM_ITEMS + 3  # the earlier copy is left as it was


def test_hnsw_grows_and_replaces(embeddings: np.ndarray, extra: np.ndarray) -> None:
    old = ItemIndex.build(embeddings, "hnsw", hnsw_m=16)
    new = old.with_items(grown_ids(), extra)
    assert (new.kind, new.hnsw_m, new.num_items, new.index.ntotal) == ("hnsw", 16, NUM_ITEMS + ADDED, NUM_ITEMS + ADDED)
    queries = extra * 3
    for strategy in ("overfetch", "selector"):
        found = new.search(queries, 5, [set()] * ADDED, strategy=strategy)
        assert found.ids[:, 0].tolist() == grown_ids().tolist()  # each added item is its own best match
    rebuilt = new.with_items(np.array([NUM_ITEMS + 1]), -extra[:1])  # an HNSW graph is rebuilt to replace
    assert rebuilt.num_items == rebuilt.index.ntotal == NUM_ITEMS + ADDED
    assert rebuilt.search(-extra[:1] * 3, 1).ids[0, 0] == NUM_ITEMS + 1
    assert rebuilt.search(queries[1:], 1).ids[:, 0].tolist() == grown_ids()[1:].tolist()


def test_ids_must_continue_the_dense_range(embeddings: np.ndarray, extra: np.ndarray) -> None:
    index = ItemIndex.build(embeddings)
    with pytest.raises(ValueError, match=f"continue the dense range from {NUM_ITEMS + 1}"):
        index.with_items(np.array([NUM_ITEMS + 2]), extra[:1])
    with pytest.raises(ValueError, match="distinct"):
        index.with_items(np.array([NUM_ITEMS + 1, NUM_ITEMS + 1]), extra[:2])
    with pytest.raises(ValueError, match="vectors"):
        index.with_items(np.array([NUM_ITEMS + 1]), extra[:2])
    assert index.with_items(np.array([], dtype=np.int64), np.zeros((0, DIM), dtype=np.float32)) is index
    assert index.num_items == index.index.ntotal == NUM_ITEMS


def test_searches_running_during_swaps_see_whole_indexes(embeddings: np.ndarray, extra: np.ndarray) -> None:
    """A reader thread searching whatever index is current while another swaps in grown copies:
    every answer is one of a whole index (ids within its own range, no error)."""
    holder = {"index": ItemIndex.build(embeddings)}
    queries = extra * 3
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            index = holder["index"]
            try:
                ids = index.search(queries, 3, [set()] * ADDED).ids
                assert ids.max() <= index.num_items and ids.min() >= 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for step in range(ADDED):
            holder["index"] = holder["index"].with_items(np.array([NUM_ITEMS + 1 + step]), extra[step : step + 1])
    finally:
        stop.set()
        reader.join(10)
    assert not errors, errors[0]
    assert holder["index"].search(queries, 1).ids[:, 0].tolist() == grown_ids().tolist()


class CountingEncoder(torch.nn.Module):
    """Sums its item rows; records what it was fed."""

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.items = torch.nn.Embedding.from_pretrained(torch.from_numpy(table), padding_idx=0)
        self.num_items = table.shape[0] - 1
        self.fed: list[torch.Tensor] = []

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        self.fed.append(sequences.clone())
        return self.items(sequences).sum(1)


def test_items_the_encoder_does_not_know_stay_out_of_its_input(embeddings: np.ndarray, extra: np.ndarray) -> None:
    encoder = CountingEncoder(embeddings)
    recommender = SessionRecommender(encoder, ItemIndex.build(embeddings).with_items(grown_ids(), extra), max_len=10)
    result = recommender.recommend([[3, NUM_ITEMS + 1, 4], [NUM_ITEMS + 2]], 5)
    assert recommender.known_items == NUM_ITEMS
    assert encoder.fed[0].max() <= NUM_ITEMS  # the new ids were not looked up in the encoder's table
    assert NUM_ITEMS + 1 not in result.ids[0] and NUM_ITEMS + 2 not in result.ids[1]  # still excluded as seen
    np.testing.assert_allclose(recommender.vectors([[3, 4]]), recommender.vectors([[3, NUM_ITEMS + 3, 4]]))
