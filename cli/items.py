"""``kdrec items``: publish new catalogue items to the items topic, list the ones served from text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cli.context import fail, friendly_errors, settings
from core.data.errors import DataFormatError
from core.data.formats.item_records import read_item_records
from store import registry
from store.catalogue import next_item_id
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade
from store.models import CatalogItem
from store.versions import describe
from stream.events import Rejection
from stream.items import decode_item, item_key, item_value, publish_items
from stream.net import any_reachable
from stream.producer import PublishError
from stream.topics import ensure_topics

app = typer.Typer(
    help="New catalogue items: publish them to the items topic (recommendable from their text at once), "
    "list the ones the active student serves from text until a refit learns them.",
    no_args_is_help=True,
)
URL_HELP = "Database URL (default: KDREC_DATABASE_URL)."


def _with_session(url: str | None, work: Any) -> Any:
    engine = create_engine_for(url or settings().database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as session:
            return work(session)
    finally:
        engine.dispose()


def learnt_items(session: Session) -> int | None:
    """How many items the active student learnt (ids 1..n), None without an active student."""
    active = registry.get_active(session, "student")
    if active is None:
        return None
    return int(describe(Path(active.artifact_path)).get("num_items", 0))


def checked(path: Path, records: list[tuple[int, dict[str, Any]]], next_id: int, max_bytes: int) -> list[dict]:
    """The records, each checked as the item feed will check it, with ids given to those without
    one: a record with a source id is left for the feed to number (``store.catalogue.numbered``),
    the others take the next free ids in file order. A problem ends the command naming file and line."""
    out, problems = [], []
    after_feed_numbered = False
    for line, record in records:
        if record.get("item_id") is None and record.get("source_id"):
            record = {name: value for name, value in record.items() if name != "item_id"}
            decoded = decode_item(item_value(record), None, max_bytes)
            after_feed_numbered = True
        else:
            if record.get("item_id") is None:
                record = {**record, "item_id": next_id}
            decoded = decode_item(item_value(record), item_key(record["item_id"]), max_bytes)
        if isinstance(decoded, Rejection):
            problems.append(f"{path}:{line}: {decoded.reason}")
            continue
        if decoded.item_id > next_id:
            problems.append(
                f"{path}:{line}: item_id_gap: item_id {decoded.item_id} leaves a gap (next free id {next_id})"
            )
            continue
        if decoded.item_id == next_id and after_feed_numbered:
            problems.append(
                f"{path}:{line}: new item {next_id} comes after records the feed numbers (a source_id and no "
                "item_id): it would take one of their ids; give it a source_id too, or put it before them"
            )
            continue
        next_id = max(next_id, decoded.item_id + 1)
        out.append(record)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise fail(f"{len(problems)} invalid item record(s), nothing published:\n  {shown}")
    return out


def id_summary(records: list[dict], first_new: int) -> str:
    """The ids the new records take (``ids 4..9``; ``first_new`` is the next free id before them),
    and how many the feed numbers."""
    new = [record["item_id"] for record in records if record.get("item_id", 0) >= first_new]
    parts = [f"ids {new[0]}..{new[-1]}" if len(new) > 1 else f"id {new[0]}"] if new else []
    numbered_by_feed = sum("item_id" not in record for record in records)
    if numbered_by_feed:
        parts.append(f"{numbered_by_feed} numbered by the feed from their source_id")
    return ", ".join(parts) or "no new ids"


@app.command("publish")
@friendly_errors(DataFormatError, KafkaError, PublishError, SQLAlchemyError, ValueError)
def publish(
    file: Path = typer.Argument(..., help="CSV with a header (title required; item_id optional) or JSON lines."),
    url: str = typer.Option(None, help=URL_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the file and show the ids; publish nothing."),
) -> None:
    """Publish items to the items topic. Records without an item_id get the next free ids in file
    order, or, when they name a source_id, an id from the consumer's item feed (safe with other
    writers); every record is checked first, and a bad one stops the command (file and line named)."""
    config = settings()
    records = read_item_records(file)
    if not records:
        raise fail(f"{file}: no items")
    first_new = _with_session(url, next_item_id)
    ready = checked(file, records, first_new, config.kafka.max_item_bytes)
    if dry_run:
        typer.echo(f"{len(ready)} valid item record(s), {id_summary(ready, first_new)}; nothing published (--dry-run)")
        return
    if not any_reachable(config.kafka.bootstrap_servers):
        raise fail(f"no Kafka broker reachable at {config.kafka.bootstrap_servers}: start one with `kdrec broker`")
    ensure_topics(config.kafka)
    sent = publish_items(config.kafka, ready)
    typer.echo(
        f"published {sent} item(s) ({id_summary(ready, first_new)}) to {config.kafka.items_topic}; a running consumer "
        "adds them to the catalogue and, from their text, to the live index"
    )


@app.command("list")
@friendly_errors(SQLAlchemyError)
def list_items(
    new: bool = typer.Option(False, "--new", help="Only items the active student serves from their text alone."),
    limit: int = typer.Option(50, min=1, help="How many, newest first."),
    url: str = typer.Option(None, help=URL_HELP),
) -> None:
    """Catalogue items, newest first; "new (from text)" marks those the active student never learnt
    (it serves them through its text map until the next refit learns their ids)."""

    def read(session: Session) -> tuple[int | None, list[CatalogItem]]:
        learnt = learnt_items(session)
        query = session.query(CatalogItem)
        if new:
            query = query.filter(CatalogItem.item_id > (learnt or 0))
        return learnt, list(query.order_by(CatalogItem.item_id.desc()).limit(limit))

    learnt, rows = _with_session(url, read)
    if learnt is None:
        typer.echo("no active student: every item is served from its text once one is trained")
    if not rows:
        typer.echo("no new items" if new else "the catalogue is empty")
        return
    for row in rows:
        mark = "new (from text)" if learnt is None or row.item_id > learnt else ""
        fields = "; ".join(f"{name}: {value}" for name, value in row.fields or () if value)
        typer.echo(f"{row.item_id:>8}  {mark:<15}  {row.title}" + (f"  [{fields}]" if fields else ""))
