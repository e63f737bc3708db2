"""``kdrec demo``: the whole live system from one command, on embedded defaults.

1. the dataset (ML-100K by default; from the data folders, else downloaded from GroupLens);
2. the SQL store: schema, then the dataset's items, users, events and sequences (skipped when
   already stored);
3. the models: an active teacher and student, trained with the quick profile when missing
   (``cli.demo_models``), then the evaluation table (popularity baseline, teacher, student);
4. the live system (``cli.demo_services``): local broker, consumer, scheduler, live traffic and
   the Streamlit app, until Ctrl-C.

A second run finds the data and the models in place and is serving within seconds.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer
from kafka.errors import KafkaError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cli.context import fail, friendly_errors, settings
from cli.demo_models import ActivePair, ensure_models, quick_profile
from cli.demo_services import ServeOptions, ServiceError, serve
from cli.evaluate import popularity_metrics
from core.data.catalog import DatasetNotFound
from core.data.catalog import load_dataset as open_dataset
from core.data.dataset import Dataset
from core.data.errors import DataFormatError
from core.data.fetch import REMOTES, FetchError, fetch
from core.evaluation.report import metrics_table
from core.text import CheckpointNotFound
from store.engine import create_engine_for, make_sessionmaker
from store.load import load_dataset
from store.migrate import upgrade
from store.models import Event
from stream.broker import BrokerError

log = logging.getLogger(__name__)
app = typer.Typer()


class StoreMismatch(ValueError):
    """The database already holds another dataset."""


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


def stored_dataset(session: Session) -> tuple[str | None, int]:
    """The dataset name of the first stored event (ids are ``{dataset}:{user}:{pos}``) and the event count."""
    first = session.scalar(select(Event.event_id).order_by(Event.id).limit(1))
    count = session.scalar(select(func.count()).select_from(Event)) or 0
    name = first.rsplit(":", 2)[0] if first and first.count(":") >= 2 else None
    return name, int(count)


def prepare_store(sessions: sessionmaker[Session], data: Dataset, url: str, sequence_length: int) -> None:
    """Load ``data`` unless the store already holds it; refuse a store that holds another dataset."""
    with sessions() as session:
        name, stored = stored_dataset(session)
    if name is not None and name != data.name:
        raise StoreMismatch(
            f"{url} holds the dataset {name!r}, not {data.name!r}: point KDREC_DATABASE_URL at "
            f"another database (e.g. sqlite:///var/kdrec-{data.name}.db) or remove this one"
        )
    if stored >= data.num_interactions:
        typer.echo(f"store: {url} already holds {stored:,} events; skipping the load")
        return
    load_dataset(sessions, data, sequence_length=sequence_length)


def quality_rows(pair: ActivePair) -> dict[str, dict[str, float]]:
    rows = {}
    for version in (pair.teacher, pair.student):
        if version is not None and isinstance(version.metrics.get("test"), dict):
            rows[f"{version.kind} v{version.id}"] = version.metrics["test"]
    return rows


@app.command()
@friendly_errors(
    SQLAlchemyError,
    DatasetNotFound,
    DataFormatError,
    FetchError,
    StoreMismatch,
    CheckpointNotFound,
    ServiceError,
    BrokerError,
    KafkaError,
)
def demo(
    dataset: str = typer.Option(None, help="ml-100k (default: KDREC_DATASET), ml-1m, or a dataset folder."),
    minutes: float = typer.Option(
        2.0, min=0.05, help="Training budget of the teacher, and of the student, when models must be trained."
    ),
    port: int = typer.Option(8501, envvar="KDREC_APP_PORT", help="Port of the Streamlit app."),
    address: str = typer.Option("127.0.0.1", envvar="KDREC_APP_ADDRESS", help="Address the app listens on."),
    rate: float = typer.Option(5.0, min=0.01, help="Clicks per second of the live traffic."),
    serve_live: bool = typer.Option(
        True,
        "--serve/--no-serve",
        help="Start the live system after the table (--no-serve: prepare data and models, print the table, exit).",
    ),
    with_app: bool = typer.Option(True, "--app/--no-app", help="Start the Streamlit app."),
    with_traffic: bool = typer.Option(True, "--traffic/--no-traffic", help="Publish live click traffic."),
    with_scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="Start the scheduled jobs."),
    log_dir: Path = typer.Option(Path("var/logs"), help="Where the children write their logs."),
) -> None:
    """The main job: dataset into SQL, models (trained when missing), baseline table, then the live system."""
    started = time.monotonic()
    config = settings()
    name = dataset or config.dataset
    source = ensure_dataset(name)
    data = open_dataset(source, config.data_dirs, text_columns=config.text_columns)
    engine = create_engine_for(config.database_url)
    try:
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        prepare_store(sessions, data, config.database_url, config.sequence_length)
        pair, trained = ensure_models(config, data, sessions, quick_profile(config, minutes))
    finally:
        engine.dispose()
    if pair.teacher is None or pair.student is None:
        raise fail("no active teacher and student after training; see the log above")
    typer.echo(
        "models: "
        + (
            f"trained {', '.join(trained)}"
            if trained
            else f"reusing teacher v{pair.teacher.id} and student v{pair.student.id}"
        )
    )
    rows = {**popularity_metrics(source, "test"), **quality_rows(pair)}
    typer.echo(f"\n{data.name}: test targets, full ranking over all {data.num_items:,} items, seen items removed")
    typer.echo(metrics_table(rows))
    if not serve_live:
        return
    options = ServeOptions(
        dataset=source,
        port=port,
        address=address,
        app=with_app,
        scheduler=with_scheduler,
        traffic=with_traffic,
        rate=rate,
        log_dir=log_dir,
    )
    status = serve(config, options, typer.echo, started)
    if status:
        raise typer.Exit(status)
