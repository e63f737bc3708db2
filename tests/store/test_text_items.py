"""A loaded student serves items it never learnt from their text: its text map, a grown index."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from core.data.dataset import Item
from core.distill.text_map import TEXT_MAP_FILE, TextMap
from core.models.student import Student
from core.settings import ServeConfig, StudentConfig
from store import registry
from store.versions import load_version, new_artifact_folder, publish

SERVE = ServeConfig(top_k=5)
NUM_ITEMS, TEXT_DIM, HIDDEN = 30, 6, 16


def _published(sessions, tmp_path: Path, text_map: TextMap | None) -> int:
    torch.manual_seed(3)
    student = Student(StudentConfig(hidden=HIDDEN, num_layers=1, num_heads=1, max_len=8), num_items=NUM_ITEMS).eval()
    folder = new_artifact_folder(tmp_path, "student", "s")
    if text_map is not None:
        text_map.save(folder)
    with sessions.begin() as session:
        return publish(session, student, folder, metrics={}, config={}, serve=SERVE, promote=True).id


def _map(seed: int = 0) -> TextMap:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(TEXT_DIM, HIDDEN, generator=generator)
    return TextMap(weight, torch.randn(HIDDEN, generator=generator), ridge=1.0, min_count=1, lm="lm-a")


def _loaded(sessions, version_id: int):
    with sessions() as session:
        return load_version(registry.get_version(session, version_id), SERVE)


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_new_items_are_mapped_into_a_new_index_and_learnt_ones_skipped(sessions, tmp_path: Path) -> None:
    text_map = _map()
    loaded = _loaded(sessions, _published(sessions, tmp_path, text_map))
    assert loaded.text_map is not None and loaded.text_map.lm == "lm-a"
    torch.testing.assert_close(loaded.text_map.weight, text_map.weight)
    before = loaded.recommender.index
    encodings = torch.randn(3, TEXT_DIM)
    items = [Item(5, "learnt"), Item(NUM_ITEMS + 1, "new"), Item(NUM_ITEMS + 2, "newer")]
    assert loaded.add_text_items(items, encodings) == 2
    after = loaded.recommender.index
    assert after is not before and before.num_items == NUM_ITEMS and after.num_items == NUM_ITEMS + 2
    assert loaded.text_items == {NUM_ITEMS + 1, NUM_ITEMS + 2}
    mapped = text_map(encodings[1:])
    found = after.search(mapped * 10, 1)  # each mapped vector, scaled up, finds its own item
    assert found.ids[:, 0].tolist() == [NUM_ITEMS + 1, NUM_ITEMS + 2]
    torch.testing.assert_close(
        torch.from_numpy(found.scores[:, 0]), (mapped * 10 * mapped).sum(1), rtol=1e-4, atol=1e-3
    )
    # a served text item whose text changed is replaced, not added twice
    assert loaded.add_text_items([Item(NUM_ITEMS + 2, "renamed")], -encodings[2:]) == 1
    assert loaded.recommender.index.num_items == NUM_ITEMS + 2
    assert loaded.recommend([[1, 2, NUM_ITEMS + 1]], 40).ids[0].tolist().count(NUM_ITEMS + 1) == 0  # seen
    with pytest.raises(ValueError, match="dense range"):
        loaded.add_text_items([Item(NUM_ITEMS + 5, "gap")], encodings[:1])


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_without_a_usable_text_map_nothing_is_added(sessions, tmp_path: Path, caplog) -> None:
    plain = _loaded(sessions, _published(sessions, tmp_path, None))
    assert plain.text_map is None
    assert plain.add_text_items([Item(NUM_ITEMS + 1, "new")], torch.randn(1, TEXT_DIM)) == 0
    assert plain.recommender.index.num_items == NUM_ITEMS and plain.text_items == set()
    version = _published(sessions, tmp_path, _map())
    with sessions() as session:
        folder = Path(registry.get_version(session, version).artifact_path)
    (folder / TEXT_MAP_FILE).write_bytes(b"not safetensors")
    with caplog.at_level(logging.WARNING, logger="store.versions"):
        broken = _loaded(sessions, version)
    assert broken.text_map is None and "malformed text map" in caplog.text  # the student still serves
    assert broken.recommend([[1, 2]], 5).ids.shape == (1, 5)
