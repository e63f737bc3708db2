"""The few statements that differ between SQLite and PostgreSQL: upserts and ``IN``."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, any_, bindparam, cast, func, select
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


def among_bound(name: str, column: Any, parameter: str) -> ColumnElement[bool]:
    """``among`` for the dialect called ``name``, its values left to the bound parameter
    ``parameter`` (give it ``among_values(name, values)``): a statement built once and reused
    skips SQLAlchemy's construction and cache-key work on every batch."""
    return _among(name, column, parameter)


def among_values(name: str, values: Collection[Any]) -> Any:
    """The value of an ``among`` parameter: a list on PostgreSQL, a JSON array on SQLite."""
    return list(values) if name == "postgresql" else json.dumps(list(values))


def among(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values`` with a single parameter however many values there are (no SQLite
    variable limit, and one statement text whose plan is reused): PostgreSQL
    ``column = ANY(CAST(:array AS type[]))``, SQLite ``column IN (SELECT value FROM json_each(:json))``."""
    name = dialect_name(session)
    return _among(name, column, None, among_values(name, values))


def _among(name: str, column: Any, parameter: str | None, value: Any = None) -> ColumnElement[bool]:
    if name == "postgresql":
        array = postgresql.ARRAY(column.type)
        return column == any_(cast(bindparam(parameter, value, type_=array), array))
    rows = func.json_each(bindparam(parameter, value)).table_valued("value")
    return column.in_(select(rows.c.value))
