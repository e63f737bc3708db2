"""Loaders for each on-disk format, on tiny fixture files and (when present) the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.catalog import DatasetNotFound, load_dataset, load_folder

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def test_sasrec_folder_reads_items_and_sequences(fixtures_dir):
    data = load_folder(fixtures_dir / "tiny-sas", "tiny")
    assert data.summary() == {"users": 3, "items": 5, "interactions": 12}
    assert data.sequences[3] == [5, 4, 3, 2, 1]
    assert data.items[4].title == "Princess Bride, The"
    assert data.items[4].genres == ("Action", "Adventure", "Comedy", "Romance")
    assert data.items[4].year == 1987
    assert data.timestamps is None
    assert "Princess Bride, The (1987)" in data.items[4].text()


def test_recbole_orders_by_timestamp_with_ties_in_file_order(fixtures_dir):
    data = load_folder(fixtures_dir / "tiny-recbole")
    # item 40 is never used, so it is dropped; ids are dense in source-id order: 10->1, 20->2, 30->3
    assert data.num_items == 3
    assert [data.items[i].source_id for i in (1, 2, 3)] == ["10", "20", "30"]
    # user 1: (20, t=100, row 2), (30, t=100, row 4), (10, t=300): the tie keeps file order
    assert data.sequences[1] == [2, 3, 1]
    assert data.timestamps[1] == [100, 100, 300]
    assert data.sequences[2] == [2, 1, 3]


def test_grouplens_ml1m_archive_format_is_latin1_and_time_ordered(fixtures_dir):
    data = load_folder(fixtures_dir / "tiny-grouplens-1m")
    titles = {data.items[i].source_id: data.items[i] for i in data.items}
    assert titles["3408"].title == "Amélie"
    assert titles["3408"].year == 2001
    assert titles["661"].genres == ("Animation", "Children's", "Musical")
    seq_user1 = [data.items[i].source_id for i in data.sequences[1]]
    assert seq_user1 == ["3408", "1193", "661"]


def test_grouplens_ml100k_archive_format_reads_genre_flags(fixtures_dir):
    data = load_folder(fixtures_dir / "tiny-grouplens-100k")
    assert data.items[1].title == "Toy Story" and data.items[1].year == 1995
    assert data.items[1].genres == ("Animation", "Children's", "Comedy")
    assert data.items[2].genres == ("Action", "Adventure", "Thriller")
    assert data.sequences[1] == [1, 2]


def test_missing_dataset_names_where_it_looked(tmp_path):
    with pytest.raises(DatasetNotFound, match="kdrec data fetch ml-1m"):
        load_dataset("ml-1m", [tmp_path])
    # A dataset that cannot be downloaded is not offered a download.
    with pytest.raises(DatasetNotFound, match=r"no-such-set.*only ml-100k and ml-1m can be downloaded") as info:
        load_dataset("no-such-set", [tmp_path])
    assert "kdrec data fetch" not in str(info.value)


@pytest.mark.skipif(not (SHARED / "ml-1m").is_dir(), reason=f"{SHARED}/ml-1m not present")
def test_real_ml1m_counts():
    data = load_dataset("ml-1m", [SHARED])
    assert data.summary() == {"users": 6040, "items": 3416, "interactions": 999_611}


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"{SHARED}/ml-100k not present")
def test_real_ml100k_counts_and_time_order():
    data = load_dataset("ml-100k", [SHARED])
    assert data.summary() == {"users": 943, "items": 1682, "interactions": 100_000}
    assert all(ts == sorted(ts) for ts in data.timestamps.values())
