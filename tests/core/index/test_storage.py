"""Index save/load round trip next to a model version's artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.index import IndexFileError, ItemIndex, load_index, save_index
from core.index.storage import INDEX_FILE, META_FILE


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_round_trip_gives_identical_results(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(11)
    embeddings = rng.standard_normal((301, 16)).astype(np.float32)
    index = ItemIndex.build(embeddings, kind, hnsw_m=8, model_version="v3")  # type: ignore[arg-type]
    folder = tmp_path / "versions" / "v3"
    path = save_index(index, folder)
    assert path == folder / INDEX_FILE and (folder / META_FILE).is_file()
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["model_version"] == "v3" and meta["kind"] == kind
    assert meta["dim"] == 16 and meta["num_items"] == 300 and meta["metric"] == "inner_product"
    assert not list(folder.glob("*.tmp"))

    loaded = load_index(folder, model_version="v3")
    assert (loaded.kind, loaded.dim, loaded.num_items, loaded.model_version) == (kind, 16, 300, "v3")
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    seen = [set(range(1, 40, i + 1)) for i in range(7)]
    before, after = index.search(queries, 10, seen), loaded.search(queries, 10, seen)
    np.testing.assert_array_equal(before.ids, after.ids)
    np.testing.assert_array_equal(before.scores, after.scores)


def test_load_checks_version_and_files(tmp_path: Path) -> None:
    index = ItemIndex.build(np.eye(5, 3, dtype=np.float32))
    with pytest.raises(IndexFileError, match="no index metadata"):
        load_index(tmp_path)
    save_index(index, tmp_path, model_version=7)
    assert load_index(tmp_path, model_version="7").model_version == 7
    with pytest.raises(IndexFileError, match="model version 7"):
        load_index(tmp_path, model_version=8)
    meta = json.loads((tmp_path / META_FILE).read_text())
    (tmp_path / META_FILE).write_text(json.dumps({**meta, "num_items": 5}))
    with pytest.raises(IndexFileError, match="metadata says 5"):
        load_index(tmp_path)
    (tmp_path / INDEX_FILE).unlink()
    with pytest.raises(IndexFileError, match="no index file"):
        load_index(tmp_path)
