"""PostgreSQL statements of the append hot path, each a constant text with array parameters.

Every statement takes whole columns as arrays and reads them back with ``unnest``, so a
batch costs one round trip per step whatever its size, and the statement text (and its
prepared plan) never changes. For comparison on ML-1M (999,611 events, 2 shared CPUs): a
multi-row VALUES insert (SQLAlchemy insertmanyvalues) loaded 16k events/s, most of it
spent building and parsing SQL; this loaded 56k/s; ``COPY`` into a staging table and
``INSERT ... SELECT`` from there measured the same 55k/s, so it is not worth its extra
statements. Rows are written in ``user_id`` order so concurrent batches lock in one order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from store.events import NewEvent

COLUMNS = "event_id, user_id, item_id, ts, type"
INSERT_EVENTS = text(
    f"INSERT INTO events ({COLUMNS}) "
    f"SELECT {COLUMNS} FROM unnest(CAST(:event_ids AS varchar[]), CAST(:user_ids AS bigint[]), "
    "CAST(:item_ids AS integer[]), CAST(:ts AS bigint[]), CAST(:types AS varchar[])) "
    "WITH ORDINALITY AS batch(event_id, user_id, item_id, ts, type, seq) ORDER BY seq "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
UPSERT_USERS = text(
    "INSERT INTO users (user_id, last_event_ts) "
    "SELECT user_id, ts FROM unnest(CAST(:user_ids AS bigint[]), CAST(:ts AS bigint[])) "
    "AS batch(user_id, ts) ORDER BY user_id "
    "ON CONFLICT (user_id) DO UPDATE SET last_event_ts = greatest(users.last_event_ts, "
    "excluded.last_event_ts)"
)
ENSURE_SEQUENCES = text(
    "INSERT INTO user_sequences (user_id, items, timestamps) "
    "SELECT user_id, CAST('[]' AS json), CAST('[]' AS json) "
    "FROM unnest(CAST(:user_ids AS bigint[])) AS batch(user_id) ORDER BY user_id "
    "ON CONFLICT (user_id) DO NOTHING"
)
WRITE_SEQUENCES = text(
    "UPDATE user_sequences SET items = CAST(batch.items AS json), "
    "timestamps = CAST(batch.stamps AS json), updated_at = now() "
    "FROM unnest(CAST(:user_ids AS bigint[]), CAST(:items AS text[]), CAST(:stamps AS text[])) "
    "AS batch(user_id, items, stamps) WHERE user_sequences.user_id = batch.user_id"
)


def insert_events(session: Session, batch: list[NewEvent]) -> set[str]:
    """Insert in arrival order, skipping stored event ids; returns the ids inserted."""
    params = {
        "event_ids": [e.event_id for e in batch],
        "user_ids": [e.user_id for e in batch],
        "item_ids": [e.item_id for e in batch],
        "ts": [e.ts for e in batch],
        "types": [e.type for e in batch],
    }
    return set(session.scalars(INSERT_EVENTS, params))


def upsert_users(session: Session, newest: dict[int, int]) -> None:
    users = sorted(newest)
    session.execute(UPSERT_USERS, {"user_ids": users, "ts": [newest[u] for u in users]})


def ensure_sequences(session: Session, users: Sequence[int]) -> None:
    session.execute(ENSURE_SEQUENCES, {"user_ids": list(users)})


def write_sequences(session: Session, rows: Sequence[tuple[int, list[int], list[int]]]) -> None:
    session.execute(
        WRITE_SEQUENCES,
        {
            "user_ids": [user for user, _, _ in rows],
            "items": [json.dumps(items, separators=(",", ":")) for _, items, _ in rows],
            "stamps": [json.dumps(stamps, separators=(",", ":")) for _, _, stamps in rows],
        },
    )
