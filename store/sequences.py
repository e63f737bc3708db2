"""Bounded per-user sequences: the pure merge rule and the batched locked update.

A sequence holds the user's most recent items, oldest first, ordered by
``(ts, arrival order)``: a late event (older than the user's newest) is placed where its
timestamp says, and among equal timestamps the one that arrived first comes first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from store import dialect, pg_bulk
from store.models import UserSequence, table

SEQUENCES = table(UserSequence)
# The hot path's statements, built once (building and cache-keying a statement costs about as much
# as SQLite running it).
SQLITE_ENSURE = sqlite.insert(SEQUENCES).on_conflict_do_nothing(index_elements=["user_id"])
SQLITE_WRITE = (
    update(SEQUENCES)
    .where(SEQUENCES.c.user_id == bindparam("b_user"))
    .values(items=bindparam("b_items"), timestamps=bindparam("b_stamps"), updated_at=func.now())
)


@functools.cache
def _lock_rows(name: str) -> Select:
    """Read the users' rows (``users``: an ``among`` parameter) in user order, locked on PostgreSQL."""
    return (
        select(SEQUENCES.c.user_id, SEQUENCES.c["items"], SEQUENCES.c.timestamps)
        .where(dialect.among_bound(name, SEQUENCES.c.user_id, "users"))
        .order_by(SEQUENCES.c.user_id)
        .with_for_update()
    )


def merge(
    items: Sequence[int], stamps: Sequence[int], new: Sequence[tuple[int, int]], limit: int
) -> tuple[list[int], list[int]]:
    """Insert ``new`` ``(ts, item)`` pairs (in arrival order) and keep the ``limit`` newest."""
    if limit < 1:
        raise ValueError("sequence limit must be at least 1")
    if stamps and new and min(ts for ts, _ in new) >= stamps[-1] and _sorted(new):
        merged_stamps = [*stamps, *(ts for ts, _ in new)]
        merged_items = [*items, *(item for _, item in new)]
    else:
        pairs = [*zip(stamps, items, strict=True), *new]
        pairs.sort(key=lambda pair: pair[0])  # stable: earlier arrivals stay first on ties
        merged_stamps = [ts for ts, _ in pairs]
        merged_items = [item for _, item in pairs]
    return merged_items[-limit:], merged_stamps[-limit:]


def _sorted(pairs: Sequence[tuple[int, int]]) -> bool:
    return all(pairs[i][0] <= pairs[i + 1][0] for i in range(len(pairs) - 1))


def apply(session: Session, new_by_user: dict[int, list[tuple[int, int]]], limit: int) -> dict[int, list[int]]:
    """Merge each user's new ``(ts, item)`` pairs into their stored sequence, under a row lock.

    Three statements for the whole batch: create missing rows (insert, conflict ignored),
    lock and read them in user order (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite already
    holds the write lock from ``BEGIN IMMEDIATE``), write them back (one array statement on
    PostgreSQL, one executemany on SQLite). Returns each user's new item sequence.
    """
    if not new_by_user:
        return {}
    users = sorted(new_by_user)
    name = dialect.dialect_name(session)
    postgres = name == "postgresql"
    if postgres:
        pg_bulk.ensure_sequences(session, users)
    else:
        session.execute(SQLITE_ENSURE, [{"user_id": user, "items": [], "timestamps": []} for user in users])
    current = session.execute(_lock_rows(name), {"users": dialect.among_values(name, users)}).all()
    result: dict[int, list[int]] = {}
    rows = []
    for user, items, stamps in current:
        merged_items, merged_stamps = merge(items, stamps, new_by_user[user], limit)
        result[user] = merged_items
        rows.append((user, merged_items, merged_stamps))
    if postgres:
        pg_bulk.write_sequences(session, rows)
        return result
    session.execute(
        SQLITE_WRITE, [{"b_user": user, "b_items": items, "b_stamps": stamps} for user, items, stamps in rows]
    )
    return result


def get_sequence(session: Session, user_id: int) -> tuple[list[int], list[int]]:
    """The user's ``(items, timestamps_ms)``, oldest first; empty lists for an unknown user."""
    row = session.execute(
        select(SEQUENCES.c["items"], SEQUENCES.c.timestamps).where(SEQUENCES.c.user_id == user_id)
    ).first()
    return (list(row[0]), list(row[1])) if row else ([], [])


def get_sequences(session: Session, user_ids: Sequence[int]) -> dict[int, list[int]]:
    """Item sequences of several users in one query (users without one are left out)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(SEQUENCES.c.user_id, SEQUENCES.c["items"]).where(
            dialect.among(session, SEQUENCES.c.user_id, set(user_ids))
        )
    )
    return {user: list(items) for user, items in rows}
