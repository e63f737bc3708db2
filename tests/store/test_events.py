"""The idempotent append: duplicates, late events, bounded sequences, validation, concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from store.events import InvalidEventError, NewEvent, UnknownItemError, append_events
from store.models import Event, User, UserSequence
from store.recommendations import recent_events
from store.sequences import get_sequence, get_sequences, merge
from tests.store.helpers import add_items

N = 5


@pytest.fixture
def catalogue(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    add_items(sessions, 20)
    return sessions


def append(sessions: sessionmaker[Session], events: list[NewEvent], limit: int = N):
    with sessions.begin() as session:
        return append_events(session, events, sequence_length=limit)


def snapshot(sessions: sessionmaker[Session]) -> tuple[list, list, list]:
    with sessions() as session:
        events = session.execute(
            select(Event.event_id, Event.user_id, Event.item_id, Event.ts).order_by(Event.id)
        ).all()
        users = session.execute(select(User.user_id, User.last_event_ts).order_by(User.user_id)).all()
        seqs = session.execute(
            select(UserSequence.user_id, UserSequence.items, UserSequence.timestamps).order_by(UserSequence.user_id)
        ).all()
    return events, users, seqs


def test_merge_orders_by_time_then_arrival_and_bounds() -> None:
    items, stamps = merge([1, 2], [10, 20], [(15, 3), (20, 4), (5, 5)], limit=10)
    assert items == [5, 1, 3, 2, 4] and stamps == [5, 10, 15, 20, 20]
    assert merge(items, stamps, [(30, 6)], limit=3) == ([2, 4, 6], [20, 20, 30])


def test_same_event_twice_and_same_batch_twice_change_nothing(catalogue: sessionmaker[Session]) -> None:
    batch = [
        NewEvent("e1", 1, 1, 1000),
        NewEvent("e2", 1, 2, 2000),
        NewEvent("e1", 1, 1, 1000),
        NewEvent("e3", 2, 3, 1500),
    ]
    first = append(catalogue, batch)
    assert (first.inserted, first.duplicates, first.touched_users) == (3, 1, [1, 2])
    assert first.sequences == {1: [1, 2], 2: [3]}
    before = snapshot(catalogue)
    again = append(catalogue, batch)
    assert (again.inserted, again.duplicates, again.touched_users, again.sequences) == (0, 4, [], {})
    single = append(catalogue, [NewEvent("e2", 1, 2, 2000)])
    assert (single.inserted, single.duplicates) == (0, 1)
    assert snapshot(catalogue) == before
    events, users, _ = before
    assert [e.event_id for e in events] == ["e1", "e2", "e3"]
    assert users == [(1, 2000), (2, 1500)]


def test_late_event_lands_in_place_and_sequences_stay_bounded(catalogue: sessionmaker[Session]) -> None:
    append(catalogue, [NewEvent(f"a{i}", 7, i, i * 100) for i in range(1, 5)])  # items 1..4 at 100..400
    late = append(catalogue, [NewEvent("late", 7, 9, 250), NewEvent("tie", 7, 10, 300)])
    # 9 goes between 2 and 3; 10 ties with 3 and arrived later, so it follows it; 1 drops out.
    assert late.sequences[7] == [2, 9, 3, 10, 4]
    with catalogue() as session:
        assert get_sequence(session, 7) == ([2, 9, 3, 10, 4], [200, 250, 300, 300, 400])
        assert session.get(User, 7).last_event_ts == 400
    # Newer events push the oldest out; the store keeps only the N most recent.
    append(catalogue, [NewEvent(f"b{i}", 7, 10 + i, 1000 + i) for i in range(1, 4)])
    with catalogue() as session:
        items, stamps = get_sequence(session, 7)
        assert items == [10, 4, 11, 12, 13] and stamps == [300, 400, 1001, 1002, 1003]
        assert session.get(User, 7).last_event_ts == 1003
        # Events are all kept; recent_events reads them newest first.
        assert [e.event_id for e in recent_events(session, 7, limit=3)] == ["b3", "b2", "b1"]
        assert session.scalar(select(func.count()).select_from(Event)) == 9
    # An event older than the whole window is stored but does not enter the sequence.
    old = append(catalogue, [NewEvent("ancient", 7, 5, 1)])
    assert old.inserted == 1 and old.sequences[7] == [10, 4, 11, 12, 13]
    with catalogue() as session:
        assert get_sequences(session, [7, 99]) == {7: [10, 4, 11, 12, 13]}


def test_unknown_item_rejected_before_writing(catalogue: sessionmaker[Session]) -> None:
    with pytest.raises(UnknownItemError, match=r"unknown item id.*21"):
        append(catalogue, [NewEvent("ok", 1, 1, 1), NewEvent("bad", 1, 21, 2)])
    with pytest.raises(InvalidEventError):
        append(catalogue, [NewEvent("x" * 65, 1, 1, 1)])
    assert snapshot(catalogue) == ([], [], [])


def test_concurrent_appends_for_same_users_lose_nothing(catalogue: sessionmaker[Session]) -> None:
    """Two threads with their own sessions append overlapping batches for the same users."""
    users = [1, 2, 3]
    per_thread = 40
    limit = 1000

    def events_for(thread: int) -> list[list[NewEvent]]:
        batches = []
        for start in range(0, per_thread, 8):
            batch = []
            for k in range(start, start + 8):
                for user in users:
                    # Even k: shared ids (both threads send them); odd k: thread-specific ids.
                    key = f"s-{user}-{k}" if k % 2 == 0 else f"t{thread}-{user}-{k}"
                    batch.append(NewEvent(key, user, 1 + (k % 20), k * 10 + thread * (k % 2)))
            batches.append(batch if thread == 0 else list(reversed(batch)))
        return batches

    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(thread: int) -> None:
        try:
            barrier.wait()
            for batch in events_for(thread):
                append(catalogue, batch, limit=limit)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    events, _, seqs = snapshot(catalogue)
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids)) == len(users) * (per_thread // 2) * 3  # shared + 2 x own
    for user, items, stamps in seqs:
        expected = sorted((e.ts, e.item_id) for e in events if e.user_id == user)
        assert stamps == [ts for ts, _ in expected]
        assert sorted(zip(stamps, items, strict=False)) == expected


def test_one_batch_larger_than_sqlite_variable_limit(catalogue: sessionmaker[Session]) -> None:
    """A bulk batch touching 33,000 users (over SQLite's 32,766 bound variables) in one append."""
    users = 33_000
    result = append(catalogue, [NewEvent(f"big-{u}", u, 1 + u % 20, u) for u in range(1, users + 1)])
    assert result.inserted == users and len(result.touched_users) == users
    with catalogue() as session:
        assert get_sequences(session, list(range(1, users + 1)))[users] == [1 + users % 20]
