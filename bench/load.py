"""Bulk-load and append throughput of the SQL store, on SQLite and/or PostgreSQL.

    .venv/bin/python -m bench.load                       # SQLite temp file + local PostgreSQL
    .venv/bin/python -m bench.load --url sqlite --url postgresql://postgres@127.0.0.1:5432/test

``sqlite`` means a fresh temporary file; a PostgreSQL URL gets a throw-away schema that is
dropped afterwards. For each database: the full dataset load (``store.load.load_dataset``),
its idempotent re-run, and the stream hot path (``append_events`` in batches of
``--batch`` new events from interleaved users, one transaction each). Prints a table and writes
bench/results/load.md and bench/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy import text

from core.data.catalog import load_dataset as open_dataset
from core.data.dataset import Dataset
from core.settings import load_settings
from store.engine import create_engine_for, make_sessionmaker, normalise_url
from store.events import NewEvent, append_events
from store.load import load_dataset
from store.migrate import upgrade

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_URLS = ["sqlite", "postgresql+psycopg://postgres@127.0.0.1:5432/test"]


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    if url == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kdrec-bench-") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists; the benchmark needs a fresh database")
        yield url
        return
    schema = f"kdrec_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine_for(parsed)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def live_batches(data: Dataset, total: int, batch: int) -> list[list[NewEvent]]:
    """New events (fresh ids, times after the loaded ones), users interleaved as in a live
    stream: every user's first event, then every user's second, ... so a batch of 500
    touches up to 500 different users (the expensive case for sequence updates)."""
    events = sorted(data.events(), key=lambda event: (event[1], event[0]))[:total]
    live = [NewEvent(f"live:{user}:{pos}", user, item, 10**13 + ts) for user, pos, item, ts in events]
    return [live[i : i + batch] for i in range(0, len(live), batch)]


def run(url: str, data: Dataset, args: argparse.Namespace) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with fresh_database(url) as target:
        engine = create_engine_for(target)
        backend = engine.dialect.name
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        for label in ("load", "re-run (all duplicates)"):
            result = load_dataset(
                sessions,
                data,
                sequence_length=args.sequence_length,
                chunk_size=args.chunk_size,
                progress=not args.quiet,
            )
            rows.append(
                {
                    "backend": backend,
                    "step": label,
                    "events": result.events,
                    "inserted": result.inserted,
                    "seconds": round(result.seconds, 2),
                    "events_per_s": round(result.events_per_second),
                }
            )
        batches = live_batches(data, args.live_events, args.batch)
        started = time.perf_counter()
        inserted = 0
        for batch in batches:
            with sessions.begin() as session:
                inserted += append_events(session, batch, sequence_length=args.sequence_length).inserted
        seconds = time.perf_counter() - started
        count = sum(len(b) for b in batches)
        rows.append(
            {
                "backend": backend,
                "step": f"append, {args.batch}/transaction",
                "events": count,
                "inserted": inserted,
                "seconds": round(seconds, 2),
                "events_per_s": round(count / seconds),
            }
        )
        engine.dispose()
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| backend | step | events | inserted | seconds | events/s |", "|---|---|---:|---:|---:|---:|"]
    lines += [
        f"| {r['backend']} | {r['step']} | {r['events']:,} | {r['inserted']:,} | "
        f"{r['seconds']} | {r['events_per_s']:,} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", help="'sqlite' or a database URL (repeatable)")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--sequence-length", type=int, default=settings.sequence_length)
    parser.add_argument("--live-events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = open_dataset(args.dataset, settings.data_dirs)
    rows = [row for url in (args.url or DEFAULT_URLS) for row in run(url, data, args)]
    machine = {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
    }
    report = table(rows)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(
        json.dumps(
            {
                "dataset": data.name,
                "interactions": data.num_interactions,
                "chunk_size": args.chunk_size,
                "sequence_length": args.sequence_length,
                "machine": machine,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    (RESULTS / "load.md").write_text(
        f"# Store load benchmark\n\n`python -m bench.load` on {data.name} "
        f"({data.num_interactions:,} interactions, {data.num_users:,} users, {data.num_items:,} items), "
        f"chunks of {args.chunk_size:,} events per transaction, sequences of {args.sequence_length}.\n"
        f"Machine: {machine['cpus']} CPUs (1-min load average {machine['load_average_1m']} at the end, "
        f"shared with other work), Python {machine['python']}, SQLAlchemy {machine['sqlalchemy']}.\n\n"
        f"{report}\n"
    )


if __name__ == "__main__":
    main()
