"""``kdrec replay``: publish a dataset onto the events topic as live traffic."""

from __future__ import annotations

import typer
from kafka.errors import KafkaError

from cli.context import fail, friendly_errors, settings
from core.data.catalog import load_dataset
from core.data.errors import DataFormatError
from stream.net import any_reachable
from stream.producer import ClickProducer, PublishError
from stream.replay import replay as replay_dataset
from stream.topics import ensure_topics

app = typer.Typer(help="Replay a dataset as live click traffic.")


@app.command("replay")
@friendly_errors(FileNotFoundError, DataFormatError, KafkaError, PublishError, ValueError)
def replay(
    dataset: str = typer.Option(None, help="Dataset name or folder (default: settings' dataset)."),
    rate: float = typer.Option(1000.0, min=0, help="At most this many events per second (0: no cap)."),
    speedup: float = typer.Option(None, help="Follow the dataset's clock this many times faster than real time."),
    limit: int = typer.Option(None, min=1, help="Publish only the first N events."),
) -> None:
    """Publish a dataset's interactions in time order (per-user order kept) to the events topic.

    Event ids are deterministic ({dataset}:{user}:{position}), so replaying data already
    loaded into SQL with `kdrec db load` inserts nothing twice.
    """
    config = settings()
    if speedup is not None and speedup <= 0:
        raise fail("--speedup must be positive")
    if not any_reachable(config.kafka.bootstrap_servers):
        raise fail(
            f"no Kafka broker reachable at {config.kafka.bootstrap_servers}: start the local "
            "one with `kdrec broker` or set KDREC_KAFKA__BOOTSTRAP_SERVERS"
        )
    data = load_dataset(dataset or config.dataset, config.data_dirs, text_columns=config.text_columns)
    ensure_topics(config.kafka)
    with ClickProducer(config.kafka) as producer:
        stats = replay_dataset(data, producer, rate=rate or None, speedup=speedup, limit=limit)
    typer.echo(
        f"published {stats.events} events of {data.name} to {config.kafka.events_topic} "
        f"in {stats.seconds:.1f} s ({stats.events_per_second:.0f} events/s)"
    )
