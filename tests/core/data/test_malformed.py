"""Bad input gets a clear error naming the file and the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.data.catalog import load_folder
from core.data.errors import DataFormatError


@pytest.fixture
def copy(tmp_path: Path, fixtures_dir: Path):
    """A writable copy of one tiny dataset folder."""

    def _copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(fixtures_dir / name, target)
        return target

    return _copy


def test_non_integer_item_names_file_and_line(copy):
    folder = copy("tiny-sas")
    (folder / "sequences.txt").write_text("1 1 2\n2 3 x\n")
    with pytest.raises(DataFormatError) as info:
        load_folder(folder)
    assert info.value.path == folder / "sequences.txt" and info.value.line == 2
    assert str(info.value).startswith(f"{folder / 'sequences.txt'}:2:")
    assert "'x'" in str(info.value)


def test_item_missing_from_catalogue_is_an_error(copy):
    folder = copy("tiny-sas")
    (folder / "sequences.txt").write_text("1 1 2\n2 3 99\n")
    with pytest.raises(DataFormatError, match=r"sequences\.txt:2: item 99 is not in the catalogue"):
        load_folder(folder)


def test_empty_file_is_an_error(copy):
    folder = copy("tiny-sas")
    (folder / "sequences.txt").write_text("")
    with pytest.raises(DataFormatError, match="file is empty"):
        load_folder(folder)


def test_missing_file_is_an_error(copy):
    folder = copy("tiny-grouplens-1m")
    (folder / "movies.dat").unlink()
    with pytest.raises(DataFormatError, match="no known dataset format"):
        load_folder(folder)


def test_bad_items_csv_row_names_line(copy):
    folder = copy("tiny-sas")
    with (folder / "items.csv").open("a") as handle:
        handle.write("6,1,Broken row\n")
    with pytest.raises(DataFormatError, match=r"items\.csv:7: expected 5 fields, got 3"):
        load_folder(folder)


def test_recbole_bad_timestamp_names_line(copy):
    folder = copy("tiny-recbole")
    with (folder / "tiny.inter").open("a") as handle:
        handle.write("3\t10\t4\tyesterday\n")
    with pytest.raises(DataFormatError, match=r"tiny\.inter:8: .*timestamp"):
        load_folder(folder)


def test_recbole_unknown_item_names_line(copy):
    folder = copy("tiny-recbole")
    with (folder / "tiny.inter").open("a") as handle:
        handle.write("3\t77\t4\t100\n")
    with pytest.raises(DataFormatError, match=r"tiny\.inter:8: item 77 is not in the catalogue"):
        load_folder(folder)


def test_grouplens_wrong_field_count_names_line(copy):
    folder = copy("tiny-grouplens-1m")
    with (folder / "ratings.dat").open("a") as handle:
        handle.write("3::1193::5\n")
    with pytest.raises(DataFormatError, match=r"ratings\.dat:6: expected user, item, rating, timestamp"):
        load_folder(folder)
