"""Bulk load of a dataset, its idempotent re-run, and reading the store back as a Dataset."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cli.db import app
from core.data.dataset import Dataset, Item
from store.events import NewEvent, append_events
from store.load import dataset_from_store, event_id, load_dataset, table_counts
from store.models import Event
from store.sequences import get_sequence

LIMIT = 10


def synthetic(users: int = 25, items: int = 30, seed: int = 3) -> Dataset:
    rng = random.Random(seed)
    catalogue = {
        i: Item(i, f"Film {i}", 1990 + i % 20, ("Drama", "Comedy")[: 1 + i % 2], str(100 + i))
        for i in range(1, items + 1)
    }
    sequences, stamps = {}, {}
    for user in range(1, users + 1):
        length = rng.randint(3, 3 * LIMIT)
        sequences[user] = [rng.randint(1, items) for _ in range(length)]
        times = sorted(rng.randint(1_600_000_000, 1_600_000_300) for _ in range(length))  # with ties
        stamps[user] = times
    return Dataset("synthetic", catalogue, sequences, stamps)


def test_load_is_complete_bounded_and_idempotent(sessions: sessionmaker[Session]) -> None:
    data = synthetic()
    first = load_dataset(sessions, data, sequence_length=LIMIT, chunk_size=37, progress=False)
    assert (first.inserted, first.duplicates, first.events) == (data.num_interactions, 0, data.num_interactions)
    with sessions() as session:
        before = table_counts(session)
        assert before["items"] == 30 and before["users"] == 25
        assert before["events"] == data.num_interactions and before["user_sequences"] == 25
        for user, seq in data.sequences.items():
            items, stamps = get_sequence(session, user)
            assert items == seq[-LIMIT:]
            assert stamps == [t * 1000 for t in data.timestamps[user][-LIMIT:]]
        stored = session.scalars(select(Event).where(Event.event_id == event_id("synthetic", 4, 2))).one()
        assert (stored.user_id, stored.item_id) == (4, data.sequences[4][2])
        bounded = dataset_from_store(session, name="again")
        full = dataset_from_store(session, full_history=True)
    assert full.items == data.items
    assert full.sequences == data.sequences and full.timestamps == data.timestamps
    assert bounded.sequences == {u: s[-LIMIT:] for u, s in data.sequences.items()}

    again = load_dataset(sessions, data, sequence_length=LIMIT, chunk_size=50, progress=False)
    assert (again.inserted, again.duplicates) == (0, data.num_interactions)
    with sessions() as session:
        assert table_counts(session) == before
        assert dataset_from_store(session).sequences == bounded.sequences


def test_stream_events_after_a_load_extend_the_loaded_sequences(sessions: sessionmaker[Session]) -> None:
    data = synthetic(users=3)
    load_dataset(sessions, data, sequence_length=LIMIT, progress=False)
    newest = data.timestamps[2][-1] * 1000
    with sessions.begin() as session:
        result = append_events(session, [NewEvent("live-1", 2, 7, newest + 5)], sequence_length=LIMIT)
    assert result.sequences[2] == [*data.sequences[2][-(LIMIT - 1) :], 7]


def test_cli_upgrade_load_stats(database_url: str, monkeypatch: pytest.MonkeyPatch, fixtures_dir: Path) -> None:
    monkeypatch.setenv("KDREC_DATABASE_URL", database_url)
    monkeypatch.setenv("KDREC_DATA_DIRS", f'["{fixtures_dir}"]')
    runner = CliRunner()
    for args in (
        ["upgrade"],
        ["load", "--dataset", "tiny-sas"],
        ["load", "--dataset", "tiny-sas", "--chunk-size", "5"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    assert "12 events (0 new, 12 already stored)" in result.output
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert "events           12" in result.output and "users            3" in result.output
    missing = runner.invoke(app, ["load", "--dataset", "no-such-dataset"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_items_keep_their_text_fields_through_the_store(sessions: sessionmaker[Session]) -> None:
    data = synthetic(users=5, items=4)
    fields = {1: (("brand", "Brio"), ("category", "Toys & Games")), 2: (("brand", ""),)}
    items = {
        i: Item(i, item.title, item.year, item.genres, item.source_id, fields.get(i, ()))
        for i, item in data.items.items()
    }
    data = Dataset(data.name, items, data.sequences, data.timestamps)
    load_dataset(sessions, data, sequence_length=LIMIT, progress=False)
    with sessions() as session:
        back = dataset_from_store(session, "synthetic")
    assert {i: item.fields for i, item in back.items.items()} == {i: item.fields for i, item in items.items()}
    assert back.item_texts() == data.item_texts()
