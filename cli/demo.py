"""``kdrec demo``: the main job on embedded defaults.

For now it prepares the store (schema + dataset in SQL) and prints the baselines'
full-ranking table; the live system (broker, consumer, scheduler, app) joins it as those
parts land.
"""

from __future__ import annotations

import logging

import typer
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from cli.evaluate import popularity_metrics
from core.data.catalog import DatasetNotFound, load_dataset as open_dataset
from core.data.errors import DataFormatError
from core.data.fetch import REMOTES, FetchError, fetch
from core.evaluation.report import metrics_table
from store.engine import create_engine_for, make_sessionmaker
from store.load import load_dataset
from store.migrate import upgrade
from store.models import Event

log = logging.getLogger(__name__)
app = typer.Typer()


def ensure_dataset(name: str) -> str:
    """The dataset's folder or name; downloads a known MovieLens set when it is not on disk."""
    config = settings()
    try:
        open_dataset(name, config.data_dirs)
        return name
    except DatasetNotFound:
        if name not in REMOTES:
            raise
        log.info("%s not found locally; downloading it from GroupLens", name)
        return str(fetch(name, config.download_dir))


@app.command()
@friendly_errors(SQLAlchemyError, DatasetNotFound, DataFormatError, FetchError)
def demo(dataset: str = typer.Option("ml-1m", help="Dataset to serve: a name (ml-1m, ml-100k) or a folder.")) -> None:
    """Run the main job on embedded defaults: SQLite store, dataset loaded, baseline table."""
    config = settings()
    source = ensure_dataset(dataset)
    data = open_dataset(source, config.data_dirs)
    engine = create_engine_for(config.database_url)
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Event)) or 0
        if stored < data.num_interactions:
            load_dataset(sessions, data, sequence_length=config.sequence_length)
        else:
            typer.echo(f"{config.database_url} already holds {stored:,} events; skipping the load")
    finally:
        engine.dispose()
    rows = popularity_metrics(source, "test")
    typer.echo(f"\n{data.name}: test targets, full ranking over all {data.num_items:,} items, seen items removed")
    typer.echo(metrics_table(rows))
