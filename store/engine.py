"""Engines and session factories for SQLite and PostgreSQL (psycopg 3).

SQLite is tuned for a single-host deployment: WAL journal, a busy timeout, foreign keys
on, and every transaction opened with ``BEGIN IMMEDIATE`` so that a read-then-write
transaction takes the write lock up front (two writers never deadlock on a lock upgrade,
and never lose each other's updates). Read-only work that should not wait for writers can
use ``make_sessionmaker(engine, read_only=True)`` (plain deferred ``BEGIN``).

Sessions are always created from the factory and passed in; kdrec holds no global session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "kdrec_sqlite_begin"


def normalise_url(url: str | URL) -> URL:
    """Map ``postgresql://`` / ``postgres://`` to the psycopg 3 driver; leave others alone."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine_for(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` with kdrec's connection settings; extra kwargs go to create_engine."""
    parsed = normalise_url(url)
    kwargs.setdefault("json_serializer", _compact_json)
    kwargs.setdefault("json_deserializer", _read_json)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3's ``timeout`` is SQLite's busy timeout: how long to wait for a lock.
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, **kwargs.pop("connect_args", {})}
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _compact_json(value: Any) -> str:
    """Compact JSON for the JSON columns, by orjson: the stream consumer writes every touched
    user's sequence (items and timestamps) and top-K per batch, and reads the sequences back;
    with 200-item sequences the standard library's encoder and decoder were a third of its
    SQL time. Numbers and keys come out as ``json.dumps`` writes them (NaN, which PostgreSQL's
    JSON rejects anyway, becomes null)."""
    return orjson.dumps(value, default=_plain, option=_JSON_OPTIONS).decode()


def _plain(value: Any) -> Any:
    """numpy scalars (e.g. ``np.float64`` in a metrics dict) as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _read_json(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN / Infinity, as the standard library writes them
        return json.loads(text)


def _configure_sqlite(engine: Engine) -> None:
    memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (the sqlite3 module's implicit one is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_sessionmaker(engine: Engine, read_only: bool = False) -> sessionmaker[Session]:
    """A session factory; objects stay readable after commit (``expire_on_commit=False``).

    ``read_only`` sessions on SQLite begin DEFERRED, so readers never queue behind writers;
    on PostgreSQL it changes nothing.
    """
    bind = engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)
