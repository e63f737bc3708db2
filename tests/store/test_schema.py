"""Migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from store.engine import create_engine_for
from store.migrate import current_revision, downgrade, head_revision, upgrade
from store.models import Base

TABLES = {"items", "users", "events", "user_sequences", "recommendations", "model_versions"}


def test_upgrade_from_empty_matches_models(blank_database_url: str) -> None:
    engine = create_engine_for(blank_database_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("events")}
        assert "ix_events_user_id_ts" in indexes
        # Upgrading again is a no-op; downgrading removes every table.
        assert upgrade(blank_database_url) == head_revision()
        downgrade(engine, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
