"""Engine set-up: URL mapping, SQLite pragmas, BEGIN IMMEDIATE for writers, deferred readers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from store.engine import create_engine_for, make_sessionmaker, normalise_url


def test_postgresql_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_pragmas_and_write_lock_taken_at_begin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'k.db'}"  # the folder is created
    engine = create_engine_for(url)
    impatient = create_engine_for(url, connect_args={"timeout": 0.05})
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            connection.commit()
        writer = make_sessionmaker(engine)()
        writer.execute(text("SELECT count(*) FROM t"))  # only a read, yet the write lock is held
        with pytest.raises(OperationalError, match="locked"), make_sessionmaker(impatient).begin() as other:
            other.execute(text("SELECT 1"))
        # Readers begin DEFERRED and see the last committed state while the writer holds the lock.
        writer.execute(text("INSERT INTO t VALUES (1)"))
        with make_sessionmaker(impatient, read_only=True)() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
        writer.commit()
        writer.close()
        with make_sessionmaker(impatient, read_only=True)() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 1
    finally:
        engine.dispose()
        impatient.dispose()


def test_json_columns_round_trip_numpy_values_and_read_older_text(sessions, engine) -> None:
    """JSON columns (written by orjson): numpy scalars and int keys are stored as ``json.dumps``
    would store them, and text that the standard library wrote (NaN included, on SQLite) reads."""
    import numpy as np

    from store.models import ModelVersion

    with sessions.begin() as session:
        version = ModelVersion(
            kind="student",
            artifact_path="a",
            config={"layers": np.int64(2), 7: "seven"},
            metrics={"ndcg@10": np.float64(0.1875), "curve": np.array([0.5, 0.25])},
        )
        session.add(version)
    with sessions() as session:
        stored = session.get(ModelVersion, version.id)
        assert stored.config == {"layers": 2, "7": "seven"}
        assert stored.metrics == {"ndcg@10": 0.1875, "curve": [0.5, 0.25]}
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE model_versions SET metrics = :m WHERE id = :i"),
                {"m": '{"ndcg@10": NaN, "hr@10": 0.5}', "i": version.id},
            )
        with sessions() as session:
            metrics = session.get(ModelVersion, version.id).metrics
            assert metrics["hr@10"] == 0.5 and metrics["ndcg@10"] != metrics["ndcg@10"]  # NaN
