"""Shared fixtures. Database ones run a test on SQLite and on PostgreSQL.

``database_url``  a fresh, migrated database URL, parametrised over ``sqlite`` (a temp file)
                  and ``postgresql`` (a throw-away schema selected by ``search_path`` in the
                  URL, so any process or engine opening the URL sees only that schema).
``blank_database_url``  the same without migrations.
``engine`` / ``sessions``  an engine and session factory on ``database_url``.

PostgreSQL is ``$KDREC_TEST_POSTGRES_URL`` or postgresql+psycopg://postgres@127.0.0.1:5432/test;
when it does not answer, the postgresql cases are skipped with the reason.
To run a test on one backend only, parametrise the backend directly::

    @pytest.mark.parametrize("db_backend", ["sqlite"])
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from store.engine import create_engine_for, make_sessionmaker, normalise_url
from store.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | str]:
    """An engine on the test PostgreSQL server, or the reason it is unavailable."""
    url = os.environ.get("KDREC_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    engine = create_engine_for(url, connect_args={"connect_timeout": 3}, pool_size=2)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        engine.dispose()
        yield (
            f"PostgreSQL not reachable at {normalise_url(url).render_as_string(hide_password=True)} "
            f"(set KDREC_TEST_POSTGRES_URL): {type(exc).__name__}: {str(exc).strip()[:200]}"
        )
        return
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
def blank_database_url(db_backend: str, tmp_path: Path, postgres_admin: Engine | str) -> Iterator[str]:
    """An empty database: a temp SQLite file or a fresh PostgreSQL schema (dropped afterwards)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'kdrec.db'}"
        return
    if isinstance(postgres_admin, str):
        pytest.skip(postgres_admin)
    schema = f"kdrec_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def database_url(blank_database_url: str) -> str:
    """A fresh database migrated to the newest schema."""
    upgrade(blank_database_url)
    return blank_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


# --- tiny datasets ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny datasets of ``tests/tiny_data.py``, one sub-folder per format."""
    from tests.tiny_data import materialise

    return materialise(tmp_path_factory.mktemp("fixtures"))
