"""``kdrec items publish`` and ``kdrec items list`` against the embedded broker and both databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.main import app
from core.data.dataset import Item
from core.models.student import Student
from core.settings import KafkaSettings, ServeConfig, StudentConfig
from store.catalogue import upsert_item
from store.load import upsert_items
from store.versions import new_artifact_folder, publish
from stream.items import decode_item
from tests.stream.helpers import read_topic

runner = CliRunner()


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, kafka: KafkaSettings, database_url: str, sessions: sessionmaker[Session]
) -> str:
    with sessions.begin() as session:
        upsert_items(session, [Item(i, f"item {i}") for i in (1, 2, 3)])
    monkeypatch.setenv("KDREC_DATABASE_URL", database_url)
    monkeypatch.setenv("KDREC_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("KDREC_KAFKA__ITEMS_TOPIC", kafka.items_topic)
    monkeypatch.setenv("KDREC_KAFKA__ITEMS_DLQ_TOPIC", kafka.items_dlq_topic)
    return database_url


def test_publish_gives_missing_ids_the_next_free_ones(env: str, kafka: KafkaSettings, tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    path.write_text("item_id,title,brand\n,Wooden railway,Brio\n3,item 3 renamed,\n,Kite,\n")
    dry = runner.invoke(app, ["items", "publish", str(path), "--dry-run"])
    assert dry.exit_code == 0 and "3 valid item record(s), ids 4..5; nothing published" in dry.output
    result = runner.invoke(app, ["items", "publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "published 3 item(s) (ids 4..5)" in result.output
    records = read_topic(kafka, kafka.items_topic, 3)
    assert [r.key for r in records] == [b"4", b"3", b"5"]
    decoded = [decode_item(r.value, r.key, kafka.max_item_bytes) for r in records]
    assert [(i.item_id, i.title, i.fields) for i in decoded] == [  # type: ignore[union-attr]
        (4, "Wooden railway", (("brand", "Brio"),)),
        (3, "item 3 renamed", (("brand", ""),)),
        (5, "Kite", (("brand", ""),)),
    ]


def test_records_with_a_source_id_are_left_for_the_feed_to_number(
    env: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    path = tmp_path / "new.csv"
    path.write_text("item_id,source_id,title\n,,Wooden railway\n,B00KITE,Kite\n3,,item 3 renamed\n")
    result = runner.invoke(app, ["items", "publish", str(path)])
    assert result.exit_code == 0, result.output
    assert "published 3 item(s) (id 4, 1 numbered by the feed from their source_id)" in result.output
    records = read_topic(kafka, kafka.items_topic, 3)
    assert [r.key for r in records] == [b"4", b"B00KITE", b"3"]
    assert [json.loads(r.value) for r in records][1] == {"source_id": "B00KITE", "title": "Kite"}
    path.write_text("source_id,title\nB00KITE,Kite\n,Yo-yo\n")
    late = runner.invoke(app, ["items", "publish", str(path), "--dry-run"])
    assert late.exit_code != 0 and "new.csv:3: new item 4 comes after records the feed numbers" in late.output


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"item_id": 9, "title": "Gap"}\n', "new.jsonl:1: item_id_gap: item_id 9 leaves a gap (next free id 4)"),
        ('{"title": "Kite"}\n{"title": "Yo-yo", "price": 3.5}\n', "new.jsonl:2: wrong_type"),
        ('{"title": "Kite"}\n{"title": \n', "new.jsonl:2: not JSON"),
    ],
)
def test_a_bad_record_stops_the_command_naming_file_and_line(
    env: str, kafka: KafkaSettings, tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "new.jsonl"
    path.write_text(content)
    result = runner.invoke(app, ["items", "publish", str(path)])
    assert result.exit_code == 1
    assert problem in result.output
    assert not read_topic(kafka, kafka.items_topic, 0, timeout_s=1.0)  # nothing was published


def test_list_new_marks_items_the_active_student_never_learnt(
    env: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    none = runner.invoke(app, ["items", "list", "--new"])
    assert none.exit_code == 0 and "no active student" in none.output
    torch.manual_seed(0)
    student = Student(StudentConfig(hidden=8, num_layers=1, num_heads=1, max_len=4), num_items=3)
    with sessions.begin() as session:
        publish(
            session,
            student,
            new_artifact_folder(tmp_path, "student", "t"),
            metrics={},
            config={},
            serve=ServeConfig(),
            promote=True,
        )
        assert upsert_item(session, Item(4, "Wooden railway", fields=(("brand", "Brio"),))) == "inserted"
    result = runner.invoke(app, ["items", "list", "--new"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "new (from text)" in lines[0] and "Wooden railway  [brand: Brio]" in lines[0]
    everything = runner.invoke(app, ["items", "list"]).output.splitlines()
    assert len(everything) == 4 and "new (from text)" not in everything[1]


def test_items_commands_have_help() -> None:
    for command in (["items"], ["items", "publish"], ["items", "list"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command
