"""The few statements that differ between SQLite and PostgreSQL: upserts and ``greatest``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


class UnsupportedDatabase(RuntimeError):
    pass


def dialect_name(session: Session) -> str:
    name = session.get_bind().dialect.name
    if name not in ("sqlite", "postgresql"):
        raise UnsupportedDatabase(f"kdrec supports SQLite and PostgreSQL, not {name}")
    return name


def insert(session: Session, table: Table) -> Any:
    """A dialect-specific INSERT that offers ``on_conflict_do_nothing/do_update``."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def greatest(session: Session, left: Any, right: Any) -> ColumnElement[Any]:
    """The larger of two values (SQLite spells it ``max(a, b)``)."""
    if dialect_name(session) == "postgresql":
        return func.greatest(left, right)
    return func.max(left, right)
