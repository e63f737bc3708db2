"""``kdrec traffic``: steady live click traffic for demos, from a dataset's interactions.

``kdrec replay`` publishes a dataset with its own event ids and times, so on a store that
already holds that dataset every event is a duplicate and nothing changes downstream. This
command replays the same interactions in the same order (``stream.replay.replay_order``) as
*new* clicks: a fresh event id per click and the current time as ``ts``, at a modest rate,
looping over the dataset until stopped. Each click therefore updates the user's sequence
and triggers fresh recommendations, and event-to-recommendation latency is measured from
a real click time.
"""

from __future__ import annotations

import itertools
import logging
import signal
import time
import uuid
from collections.abc import Iterator
from types import FrameType

import typer
from kafka.errors import KafkaError

from cli.context import fail, friendly_errors, settings
from core.data.catalog import load_dataset
from core.data.dataset import Dataset
from core.data.errors import DataFormatError
from stream.net import any_reachable
from stream.producer import ClickProducer, PublishError, now_ms
from stream.replay import TokenBucket, replay_order

log = logging.getLogger(__name__)
app = typer.Typer(help="Live click traffic for demos.")
LOG_EVERY_S = 30.0


def live_clicks(dataset: Dataset, run_id: str) -> Iterator[tuple[str, int, int]]:
    """``(event_id, user, item)`` forever: the dataset in replay order, again and again."""
    for lap in itertools.count():
        for n, (user, _pos, item, _ts) in enumerate(replay_order(dataset)):
            yield f"live-{run_id}-{lap}-{n}", user, item


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command("traffic")
@friendly_errors(FileNotFoundError, DataFormatError, KafkaError, PublishError, ValueError)
def traffic(
    dataset: str = typer.Option(None, help="Dataset name or folder (default: settings' dataset)."),
    rate: float = typer.Option(5.0, min=0.01, help="Clicks per second."),
    limit: int = typer.Option(None, min=1, help="Stop after N clicks (default: run until stopped)."),
) -> None:
    """Publish a dataset's interactions as new live clicks (fresh ids, current time) until stopped."""
    config = settings()
    if not any_reachable(config.kafka.bootstrap_servers):
        raise fail(f"no Kafka broker reachable at {config.kafka.bootstrap_servers}")
    data = load_dataset(dataset or config.dataset, config.data_dirs, text_columns=config.text_columns)
    signal.signal(signal.SIGTERM, _stop)
    bucket = TokenBucket(rate, burst=1.0)
    sent, started, reported = 0, time.monotonic(), time.monotonic()
    typer.echo(f"publishing {data.name} clicks to {config.kafka.events_topic} at {rate:g}/s; Ctrl-C to stop")
    with ClickProducer(config.kafka) as producer:
        try:
            for event_id, user, item in itertools.islice(live_clicks(data, uuid.uuid4().hex[:8]), limit):
                bucket.acquire()
                producer.publish_click(user, item, ts=now_ms(), event_id=event_id)
                sent += 1
                if time.monotonic() - reported >= LOG_EVERY_S:
                    producer.flush(10)
                    reported = time.monotonic()
                    log.info("%d clicks published (%.1f/s)", sent, sent / (reported - started))
        except KeyboardInterrupt:
            pass
    typer.echo(f"published {sent} clicks in {time.monotonic() - started:.1f} s")
