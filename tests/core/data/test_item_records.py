"""Files of new items for ``kdrec items publish``: CSV and JSON lines, bad lines named."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.errors import DataFormatError
from core.data.formats.item_records import read_item_records


def test_csv_with_optional_ids_and_text_columns(tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    path.write_text('item_id,title,brand,year\n11925,"Wooden train, 40 pieces",Brio,2019\n\n,Kite,,\n')
    assert read_item_records(path) == [
        (2, {"item_id": 11925, "title": "Wooden train, 40 pieces", "brand": "Brio", "year": 2019}),
        (4, {"title": "Kite", "brand": ""}),
    ]


def test_json_lines_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    path.write_text('{"item_id": 7, "title": "Kite", "genres": ["Outdoor"]}\n\n{"title": "Yo-yo"}\n')
    assert read_item_records(path) == [
        (1, {"item_id": 7, "title": "Kite", "genres": ["Outdoor"]}),
        (3, {"title": "Yo-yo"}),
    ]


@pytest.mark.parametrize(
    ("name", "content", "line", "reason"),
    [
        ("a.csv", "item_id,name\n1,x\n", 1, "title column"),
        ("b.csv", "title,title\nx,y\n", 1, "repeated"),
        ("c.csv", "item_id,title\n1,Kite\nx2,Yo-yo\n", 3, "item_id is not an integer"),
        ("d.csv", "title,brand\nKite\n", 2, "1 fields, the header has 2"),
        ("e.jsonl", '{"title": "Kite"}\n{"title": \n', 2, "not JSON"),
        ("f.jsonl", '["Kite"]\n', 1, "expected a JSON object"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, name: str, content: str, line: int, reason: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError) as caught:
        read_item_records(path)
    assert caught.value.line == line and reason in str(caught.value) and str(path) in str(caught.value)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_item_records(tmp_path / "none.csv")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"title": "Am\xe9lie"}\n')
    with pytest.raises(DataFormatError, match="not UTF-8"):
        read_item_records(latin)
