"""The idempotent, batched append of interaction events: the stream consumer's hot path.

``append_events`` writes a batch with a constant number of statements, whatever its size:
one item check, one users upsert, one events insert (``ON CONFLICT (event_id) DO NOTHING``,
returning what was new), then the sequence update of ``store.sequences.apply``. Only newly
inserted events touch sequences, so replaying an event or a whole batch changes nothing.

The caller owns the transaction (one batch = one transaction)::

    with sessions.begin() as session:
        result = append_events(session, batch, sequence_length=settings.sequence_length)

Concurrent appends for the same users are safe: users and sequence rows are locked in
``user_id`` order on PostgreSQL, and SQLite transactions start with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from store import dialect, pg_bulk, sequences
from store.models import CatalogItem, Event, User, table

EVENTS = table(Event)
USERS = table(User)
ITEMS = table(CatalogItem)
MAX_EVENT_ID = 64
MAX_TYPE = 32
# SQLite's statements, built once (PostgreSQL's are in ``store.pg_bulk``).
_UPSERT = sqlite.insert(USERS)
SQLITE_UPSERT_USERS = _UPSERT.on_conflict_do_update(
    index_elements=["user_id"], set_={"last_event_ts": func.max(USERS.c.last_event_ts, _UPSERT.excluded.last_event_ts)}
)
SQLITE_INSERT_EVENTS = (
    sqlite.insert(EVENTS).on_conflict_do_nothing(index_elements=["event_id"]).returning(EVENTS.c.event_id)
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An interaction to store; ``event_id`` is the producer's idempotency key."""

    event_id: str
    user_id: int
    item_id: int
    ts: int
    """Epoch milliseconds."""
    type: str = "click"


@dataclass
class AppendResult:
    inserted: int
    duplicates: int
    touched_users: list[int] = field(default_factory=list)
    """Users with at least one newly inserted event (sorted)."""
    sequences: dict[int, list[int]] = field(default_factory=dict)
    """The updated item sequence of each touched user."""


class InvalidEventError(ValueError):
    pass


class UnknownItemError(InvalidEventError):
    def __init__(self, item_ids: Iterable[int]) -> None:
        self.item_ids = sorted(item_ids)
        shown = ", ".join(map(str, self.item_ids[:10]))
        more = f" and {len(self.item_ids) - 10} more" if len(self.item_ids) > 10 else ""
        super().__init__(f"unknown item id(s) {shown}{more}: not in the items table; nothing was written")


def append_events(
    session: Session, events: Iterable[NewEvent], *, sequence_length: int, check_items: bool = True
) -> AppendResult:
    """Store a batch of events exactly once and update the touched users' sequences.

    Events repeated within the batch or already stored count as ``duplicates``. Unknown item
    ids raise ``UnknownItemError`` before anything is written (``check_items=False`` skips the
    check for callers that validated against the catalogue already).
    """
    batch, repeated = _unique(events)
    if not batch:
        return AppendResult(0, repeated)
    if check_items:
        reject_unknown_items(session, {event.item_id for event in batch})
    _upsert_users(session, batch)
    inserted_ids = _insert(session, batch)
    new_by_user: dict[int, list[tuple[int, int]]] = {}
    for event in batch:
        if event.event_id in inserted_ids:
            new_by_user.setdefault(event.user_id, []).append((event.ts, event.item_id))
    updated = sequences.apply(session, new_by_user, sequence_length)
    return AppendResult(len(inserted_ids), repeated + len(batch) - len(inserted_ids), sorted(updated), updated)


def _unique(events: Iterable[NewEvent]) -> tuple[list[NewEvent], int]:
    seen: set[str] = set()
    batch: list[NewEvent] = []
    repeated = 0
    for event in events:
        if not event.event_id or len(event.event_id) > MAX_EVENT_ID:
            raise InvalidEventError(f"event_id must be 1..{MAX_EVENT_ID} characters: {event.event_id!r}")
        if len(event.type) > MAX_TYPE:
            raise InvalidEventError(f"event type longer than {MAX_TYPE} characters: {event.type!r}")
        if event.event_id in seen:
            repeated += 1
            continue
        seen.add(event.event_id)
        batch.append(event)
    return batch, repeated


def all_item_ids(session: Session) -> set[int]:
    """Every id in the items table."""
    return set(session.scalars(select(ITEMS.c.item_id)))


def reject_unknown_items(session: Session, item_ids: set[int]) -> None:
    """Raise ``UnknownItemError`` unless every id is in the items table."""
    if not item_ids:
        return
    stmt = select(ITEMS.c.item_id).where(dialect.among(session, ITEMS.c.item_id, item_ids))
    known = set(session.scalars(stmt))
    if len(known) != len(item_ids):
        raise UnknownItemError(item_ids - known)


def _upsert_users(session: Session, batch: list[NewEvent]) -> None:
    newest: dict[int, int] = {}
    for event in batch:
        if event.ts > newest.get(event.user_id, event.ts - 1):
            newest[event.user_id] = event.ts
    if dialect.dialect_name(session) == "postgresql":
        pg_bulk.upsert_users(session, newest)
        return
    session.execute(SQLITE_UPSERT_USERS, [{"user_id": user, "last_event_ts": newest[user]} for user in sorted(newest)])


def _insert(session: Session, batch: list[NewEvent]) -> set[str]:
    """Insert the events, ignoring stored event ids; returns the ids actually inserted.

    PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)``; SQLite: a multi-row INSERT.
    """
    if dialect.dialect_name(session) == "postgresql":
        return pg_bulk.insert_events(session, batch)
    rows = [
        {"event_id": e.event_id, "user_id": e.user_id, "item_id": e.item_id, "ts": e.ts, "type": e.type} for e in batch
    ]
    return set(session.scalars(SQLITE_INSERT_EVENTS, rows))
