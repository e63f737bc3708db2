"""SQL storage for kdrec (SQLite or PostgreSQL): schema, migrations, the idempotent event
append, sequences, recommendations and the model registry.

Every function takes a ``Session`` and never commits: the caller owns the transaction,
usually ``with sessions.begin() as session: ...`` where ``sessions = make_sessionmaker(engine)``.

    engine = create_engine_for(settings.database_url); upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        result = append_events(session, batch, sequence_length=settings.sequence_length)
        write_recommendations(session, [...])
    with sessions.begin() as session:
        active = registry.get_active(session, "student")
"""

from store import registry
from store.engine import create_engine_for, make_sessionmaker, normalise_url
from store.events import AppendResult, InvalidEventError, NewEvent, UnknownItemError, append_events
from store.load import dataset_from_store, load_dataset
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
    "dataset_from_store",
    "get_sequence",
    "get_sequences",
    "latest_recommendations",
    "load_dataset",
    "make_sessionmaker",
    "normalise_url",
    "recent_events",
    "registry",
    "upgrade",
    "write_recommendations",
]
