"""``kdrec consume``: run one member of the stream consumer group until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import signal
from types import FrameType

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import fail, friendly_errors, settings
from store.active import ActiveModel
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import current_revision, head_revision
from stream.consumer import StreamConsumer
from stream.fetch_wait import EMBEDDED_BUSY_MS, EMBEDDED_IDLE_MS, REMOTE_MS
from stream.options import ConsumerOptions

app = typer.Typer(help="Consume click events and serve recommendations.")


@app.command("consume")
@friendly_errors(SQLAlchemyError)
def consume(
    model_check: float = typer.Option(2.0, min=0.1, help="Seconds between checks for a newly promoted student."),
    poll_timeout_ms: int = typer.Option(500, min=1, help="Longest wait for records per poll."),
    fetch_max_wait_ms: int | None = typer.Option(
        None,
        min=1,
        help="Longest time the broker may hold an empty fetch. "
        f"Default: on the embedded broker {EMBEDDED_BUSY_MS} ms while "
        f"records flow, {EMBEDDED_IDLE_MS} ms when idle; {REMOTE_MS} "
        "elsewhere (see stream/fetch_wait.py).",
    ),
    metrics_json: bool = typer.Option(
        False, "--metrics-json", help="Print the final counters and stage timings as JSON."
    ),
    threads: int = typer.Option(
        1,
        min=1,
        help="CPU threads for the student (torch) and the FAISS search. "
        "One is fastest for per-event batches; run more consumer "
        "processes to use more cores.",
    ),
    poison_attempts: int = typer.Option(
        3,
        min=1,
        help="Polls that may fail on one record batch the client "
        "cannot decode (unknown codec, corrupt payload, bad "
        "CRC) before it is skipped: it then goes to the "
        "dead-letter topic with its offsets and reason.",
    ),
) -> None:
    """Join the consumer group and apply click events to SQL, writing each touched user's top-K.

    At-least-once delivery with an exactly-once effect in SQL: offsets are committed after the
    SQL transaction and the dead-letter/recommendation sends. Waits (with backoff) for the
    broker and the database when they are away. Stop with Ctrl-C or SIGTERM: the current
    batch finishes and is committed first.
    """
    config = settings()
    engine = create_engine_for(config.database_url)
    try:
        if current_revision(engine) != head_revision():
            raise fail("the database schema is missing or old: run `kdrec db upgrade` first")
        sessions = make_sessionmaker(engine)
        # Registry checks read only: on SQLite they must not take the write lock.
        active = ActiveModel(make_sessionmaker(engine, read_only=True), config.serve, check_every=0.0)
        options = ConsumerOptions(
            poll_timeout_ms=poll_timeout_ms,
            model_check_s=model_check,
            fetch_max_wait_ms=fetch_max_wait_ms,
            threads=threads,
            poison_attempts=poison_attempts,
        )
        consumer = StreamConsumer(
            config.kafka,
            config.serve,
            sessions,
            active,
            sequence_length=config.sequence_length,
            options=options,
            lm_checkpoint=config.teacher.checkpoint,  # the LM that reads new items' text
        )

        def _stop(signum: int, frame: FrameType | None) -> None:
            consumer.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        metrics = consumer.run()
    finally:
        engine.dispose()
    summary = metrics.snapshot()
    typer.echo(
        f"stopped after {summary['batches']} batches: {summary['records']} records, "
        f"{summary['inserted']} new events, {summary['duplicates']} duplicates, "
        f"{summary['rejected']} dead-lettered, {summary['skipped_batches']} undecodable batches skipped "
        f"({summary['skipped_offsets']} offsets), {summary['recommendations']} recommendations"
    )
    if metrics_json:
        typer.echo(json.dumps(summary, default=float))
