"""``kdrec db``: create/migrate the SQL store, bulk load a dataset, show what is stored."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from core.data.catalog import DatasetNotFound
from core.data.catalog import load_dataset as open_dataset
from core.data.errors import DataFormatError
from store import registry
from store.engine import create_engine_for, make_sessionmaker
from store.load import load_dataset, table_counts
from store.migrate import current_revision, head_revision
from store.migrate import upgrade as upgrade_schema

app = typer.Typer(help="The SQL store (SQLite or PostgreSQL): migrate, load datasets, inspect.", no_args_is_help=True)

URL_HELP = "Database URL (default: KDREC_DATABASE_URL, else sqlite:///var/kdrec.db)."


def _url(url: str | None) -> str:
    return url or settings().database_url


@app.command()
@friendly_errors(SQLAlchemyError)
def upgrade(
    url: str = typer.Option(None, help=URL_HELP),
    revision: str = typer.Option("head", help="Alembic revision to migrate to."),
) -> None:
    """Create the schema or migrate it to the newest revision (safe to run again)."""
    engine = create_engine_for(_url(url))
    try:
        now = upgrade_schema(engine, revision)
        typer.echo(f"database at revision {now} ({engine.url.render_as_string(hide_password=True)})")
    finally:
        engine.dispose()


@app.command()
@friendly_errors(SQLAlchemyError, DatasetNotFound, DataFormatError)
def load(
    dataset: str = typer.Option(
        None,
        "--dataset",
        "-d",
        help="Dataset name (searched in the data folders) or folder path; default KDREC_DATASET.",
    ),
    url: str = typer.Option(None, help=URL_HELP),
    min_interactions: int = typer.Option(0, help="Apply k-core filtering with this k (0: none)."),
    chunk_size: int = typer.Option(50_000, min=1, help="Events per transaction."),
) -> None:
    """Load a dataset's items, users, events and bounded sequences (idempotent on re-run)."""
    config = settings()
    data = open_dataset(dataset or config.dataset, config.data_dirs, min_interactions or None)
    engine = create_engine_for(_url(url))
    try:
        upgrade_schema(engine)
        result = load_dataset(
            make_sessionmaker(engine), data, sequence_length=config.sequence_length, chunk_size=chunk_size
        )
    finally:
        engine.dispose()
    typer.echo(
        f"{result.dataset}: {result.items:,} items, {result.users:,} users, "
        f"{result.events:,} events ({result.inserted:,} new, {result.duplicates:,} already "
        f"stored) in {result.seconds:.1f}s = {result.events_per_second:,.0f} events/s"
    )


@app.command()
@friendly_errors(SQLAlchemyError)
def stats(url: str = typer.Option(None, help=URL_HELP)) -> None:
    """Print the schema revision, row counts and the active model versions."""
    engine = create_engine_for(_url(url))
    try:
        revision = current_revision(engine)
        typer.echo(f"{'revision':<16} {revision or 'none'} (newest {head_revision()})")
        if revision is None:
            typer.echo("run 'kdrec db upgrade' to create the schema")
            return
        with make_sessionmaker(engine, read_only=True)() as session:
            for table, count in table_counts(session).items():
                typer.echo(f"{table:<16} {count:,}")
            for kind in ("teacher", "student"):
                active = registry.get_active(session, kind)
                typer.echo(f"{'active ' + kind:<16} {f'v{active.id} {active.artifact_path}' if active else 'none'}")
    finally:
        engine.dispose()


@app.command()
@friendly_errors(SQLAlchemyError, registry.RegistryError)
def versions(
    url: str = typer.Option(None, help=URL_HELP),
    kind: str = typer.Option(None, help="Only 'teacher' or 'student' versions."),
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
) -> None:
    """List model versions in the registry, newest first."""
    engine = create_engine_for(_url(url))
    try:
        with make_sessionmaker(engine, read_only=True)() as session:
            rows = registry.list_versions(session, kind=kind, limit=limit)
    finally:
        engine.dispose()
    typer.echo(f"{'id':>4} {'kind':<8} {'status':<10} {'parent':>6} {'created':<20} artifact")
    for v in rows:
        typer.echo(
            f"{v.id:>4} {v.kind:<8} {v.status:<10} {v.parent_id or '':>6} "
            f"{v.created_at:%Y-%m-%d %H:%M:%S} {v.artifact_path}"
        )
