"""The general item-text folder format: sequences.txt + items.csv with a header starting item_id."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.catalog import load_dataset, load_folder
from core.data.dataset import Item
from core.data.errors import DataFormatError
from core.settings import Settings

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
ITEMS = (
    "item_id,asin,title,brand,category\n"
    '1,B001,"Wooden Train Set, 50 pieces",Brio,Toys &amp; Games\n'
    "2,B002,,NoName,Puzzles\n"
    "3,B003,Dragon &quot;Puff&quot; Plush,,Plush\n"
)
SEQUENCES = "10 1 2 3\n11 3 1\n12 2 3 1 2\n"


def write(folder: Path, items: str = ITEMS, sequences: str = SEQUENCES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.csv").write_text(items, encoding="utf-8")
    (folder / "sequences.txt").write_text(sequences, encoding="utf-8")
    return folder


def test_every_text_column_is_read_unescaped_and_empty_text_is_allowed(tmp_path: Path) -> None:
    data = load_folder(write(tmp_path / "toys"))
    assert data.summary() == {"users": 3, "items": 3, "interactions": 9}
    assert data.meta["format"] == "item-table"
    first, empty, plush = (data.items[i] for i in (1, 2, 3))
    assert first.title == "Wooden Train Set, 50 pieces" and first.source_id == "B001"
    assert first.fields == (("brand", "Brio"), ("category", "Toys & Games"))
    assert first.text() == "Wooden Train Set, 50 pieces. Brand: Brio. Category: Toys & Games."
    assert empty.title == "" and empty.text() == "Brand: NoName. Category: Puzzles."
    assert plush.title == 'Dragon "Puff" Plush' and plush.text() == 'Dragon "Puff" Plush. Category: Plush.'
    assert data.sequences[12] == [2, 3, 1, 2]


def test_the_text_columns_setting_chooses_and_orders_what_the_lm_reads(tmp_path: Path) -> None:
    folder = write(tmp_path / "toys")
    data = load_folder(folder, text_columns=("category", "title"))
    assert data.items[1].title == "Wooden Train Set, 50 pieces"  # title first wherever it is named
    assert data.items[1].fields == (("category", "Toys & Games"),)
    assert load_folder(folder, text_columns=("brand",)).items[1].text() == "Brio"
    with pytest.raises(DataFormatError, match=r"items\.csv:1: text column\(s\) colour not in the header"):
        load_folder(folder, text_columns=("title", "colour"))
    settings = Settings(text_columns=("title",), data_dirs=(tmp_path,))
    only_titles = load_dataset("toys", settings.data_dirs, text_columns=settings.text_columns)
    assert only_titles.items[1].text() == "Wooden Train Set, 50 pieces"


@pytest.mark.parametrize(
    ("items", "sequences", "where", "message"),
    [
        ("id,title\n1,A\n", SEQUENCES, "sequences.txt", None),  # not this format: falls to the ML-1M reader
        ("item_id,title\n1,A\nx,B\n", "1 1\n", "items.csv:3", "item_id is not an integer: 'x'"),
        ("item_id,title\n1,A\n1,B\n", "1 1\n", "items.csv:3", "duplicate item id 1"),
        ("item_id,title\n1,A\n2,B,extra\n", "1 1\n", "items.csv:3", "expected 2 fields, got 3"),
        ("item_id,title\n1,A\n0,B\n", "1 1\n", "items.csv:3", "item_id must be >= 1"),
        ("item_id,title\n1,A\n3,C\n", "1 1\n", "items.csv", "item ids must be 1..2 without gaps; missing 2"),
        ("item_id,title\n1,A\n2,B\n", "1 1 2\n2 2 9\n", "sequences.txt:2", "item 9 is not in the catalogue"),
        ("item_id,title,title\n1,A,B\n", "1 1\n", "items.csv:1", "duplicate column names"),
    ],
)
def test_a_bad_file_is_named_with_its_line(
    tmp_path: Path, items: str, sequences: str, where: str, message: str | None
) -> None:
    folder = write(tmp_path / "bad", items, sequences)
    with pytest.raises(DataFormatError) as info:
        load_folder(folder)
    if message is None:  # a header that does not start with item_id is not this format
        assert "items.csv:1: expected the header sas_item_id" in str(info.value)
        assert "or one starting with item_id" in str(info.value)
        return
    assert f"{folder / where}:" in str(info.value) or str(info.value).startswith(f"{folder / where}")
    assert message in str(info.value)


@pytest.mark.skipif(not (SHARED / "amazon-toys").is_dir(), reason="../shared/data/amazon-toys is not here")
def test_amazon_toys_loads_by_name() -> None:
    data = load_dataset("amazon-toys", [SHARED])
    assert data.summary() == {"users": 19_412, "items": 11_924, "interactions": 167_597}
    texts = data.item_texts()
    assert not any("&amp;" in text or "&quot;" in text for text in texts)
    assert sum(1 for text in texts if not text) == 59  # empty titles load, with empty text
    assert all(item.source_id for item in data.items.values())  # the ASIN


def test_item_text_reads_as_sentences_and_movies_read_as_before() -> None:
    assert Item(1, "Toy Story", 1995, ("Animation", "Comedy")).text() == "Toy Story (1995). Genres: Animation, Comedy."
    assert Item(1, "Toy Story", 1995).text() == "Toy Story (1995)"
    assert Item(1, "Yahtzee!", fields=(("brand", "Hasbro Inc."), ("age_range", "8+"))).text() == (
        "Yahtzee! Brand: Hasbro Inc. Age range: 8+."
    )
    assert Item(1, "", fields=(("brand", ""),)).text() == ""


def test_text_columns_on_a_fixed_text_format_are_reported_not_dropped_silently(
    fixtures_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="core.data.catalog"):
        data = load_folder(fixtures_dir / "tiny-sas", text_columns=("title",))
    assert "text columns title ignored" in caplog.text
    assert data.items[4].text() == "Princess Bride, The (1987). Genres: Action, Adventure, Comedy, Romance."
