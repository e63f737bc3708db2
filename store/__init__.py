"""SQL storage for kdrec (SQLite or PostgreSQL): schema, migrations, the idempotent event
append, sequences, recommendations and the model registry.

Every function takes a ``Session`` and never commits: the caller owns the transaction,
usually ``with sessions.begin() as session: ...`` where ``sessions = make_sessionmaker(engine)``.
"""

from store.engine import create_engine_for, make_sessionmaker, normalise_url
from store.events import AppendResult, InvalidEventError, NewEvent, UnknownItemError, append_events
from store.migrate import upgrade
from store.recommendations import (
    NewRecommendation,
    latest_recommendations,
    recent_events,
    write_recommendations,
)
from store.sequences import get_sequence, get_sequences

__all__ = [
    "AppendResult",
    "InvalidEventError",
    "NewEvent",
    "NewRecommendation",
    "UnknownItemError",
    "append_events",
    "create_engine_for",
    "get_sequence",
    "get_sequences",
    "latest_recommendations",
    "make_sessionmaker",
    "normalise_url",
    "recent_events",
    "upgrade",
    "write_recommendations",
]
