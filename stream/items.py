"""The item record contract on the items topic, decoding it, and publishing item records.

A new (or changed) catalogue item is announced on ``KafkaSettings.items_topic``, one partition,
so records stay in order: item ids are dense, and a new item's id must be the next free one
(``store.catalogue``), so it must come after the record of the item before it. The value is a
UTF-8 JSON object, the key the item id as decimal text (optional; when present it must match)::

    {"item_id": 1683, "title": "Heat", "year": 1995, "genres": ["Action", "Crime"],
     "brand": "Warner", "category": "Movies"}

* ``item_id``: integer >= 1. ``title``: a string, 1-512 characters once stripped.
* ``year``: integer 0..9999, optional. ``genres``: a list of non-empty strings without ``|``,
  optional. ``source_id``: the id in the source system, a string of 1-64 characters, optional.
* A record may leave out ``item_id`` if it names a ``source_id``: the feed then numbers it (the
  stored item with that source id, or the next free id), and the key, if any, is the source id.
  This is how writers that cannot know the next free id (the app) add items without racing.
* every other field is a further text field the language model reads (``Item.fields``, in the
  order the record gives them): its value must be a string (so ``"price": 9.5`` is refused).

Types are strict, as for click events: ``"42"`` is not an item id, ``true`` is not a year.
``decode_item`` never raises: it returns an ``Item`` or a ``Rejection`` (``stream.events``)
whose reason goes to the items dead-letter topic with the original bytes (``stream.dlq``):
``empty``, ``oversized``, ``invalid_json``, ``missing_field``, ``wrong_type``,
``invalid_field``, ``key_mismatch``; the feed adds ``item_id_gap`` (``stream.item_feed``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from kafka import KafkaProducer

from core.data.dataset import Item
from core.settings import KafkaSettings
from store.catalogue import UNNUMBERED
from stream.events import Rejection, json_object
from stream.producer import PublishError, producer_options

MAX_ITEM_ID = 2**31 - 1
MAX_TITLE = 512
MAX_SOURCE_ID = 64
MAX_FIELD_NAME = 64
MAX_YEAR = 9999
KNOWN = ("item_id", "title", "year", "genres", "source_id")
_CODES = ("missing_field", "wrong_type", "invalid_field")


def item_key(item_id: int) -> bytes:
    """The Kafka message key of an item record: its id as decimal text."""
    return str(item_id).encode()


def record_key(item: Item) -> bytes:
    """The key of ``item``'s record: its id, or its source id while it is ``UNNUMBERED``."""
    return item_key(item.item_id) if item.item_id != UNNUMBERED else str(item.source_id).encode()


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _problems(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """``(code, detail)`` for every problem of a decoded JSON object."""
    found: list[tuple[str, str]] = []
    if "item_id" not in payload and not isinstance(payload.get("source_id"), str):
        found.append(("missing_field", "item_id is required (or a source_id, for the feed to number a new item)"))
    if "title" not in payload:
        found.append(("missing_field", "title is required"))
    item_id = payload.get("item_id")
    if "item_id" in payload and not _is_int(item_id):
        found.append(("wrong_type", f"item_id must be an integer (got {item_id!r:.40})"))
    elif _is_int(item_id) and not 1 <= item_id <= MAX_ITEM_ID:
        found.append(("invalid_field", f"item_id must be 1..{MAX_ITEM_ID} (got {item_id})"))
    title = payload.get("title")
    if "title" in payload and not isinstance(title, str):
        found.append(("wrong_type", f"title must be a string (got {title!r:.40})"))
    elif isinstance(title, str) and not 1 <= len(title.strip()) <= MAX_TITLE:
        found.append(("invalid_field", f"title must be 1-{MAX_TITLE} characters (got {len(title.strip())})"))
    year = payload.get("year")
    if year is not None and not _is_int(year):
        found.append(("wrong_type", f"year must be an integer (got {year!r:.40})"))
    elif _is_int(year) and not 0 <= year <= MAX_YEAR:
        found.append(("invalid_field", f"year must be 0..{MAX_YEAR} (got {year})"))
    genres = payload.get("genres")
    if genres is not None and not (isinstance(genres, list) and all(isinstance(g, str) for g in genres)):
        found.append(("wrong_type", f"genres must be a list of strings (got {genres!r:.40})"))
    elif genres and any(not g.strip() or "|" in g for g in genres):
        found.append(("invalid_field", "genres must be non-empty and contain no '|'"))
    source_id = payload.get("source_id")
    if source_id is not None and not isinstance(source_id, str):
        found.append(("wrong_type", f"source_id must be a string (got {source_id!r:.40})"))
    elif isinstance(source_id, str) and not 1 <= len(source_id) <= MAX_SOURCE_ID:
        found.append(("invalid_field", f"source_id must be 1-{MAX_SOURCE_ID} characters"))
    for name, value in payload.items():
        if name in KNOWN:
            continue
        if not name.strip() or len(name) > MAX_FIELD_NAME:
            found.append(("invalid_field", f"field name {name!r:.80} must be 1-{MAX_FIELD_NAME} characters"))
        elif not isinstance(value, str):
            found.append(("wrong_type", f"{name} must be a string (got {value!r:.40})"))
    return found


def decode_item(value: bytes | None, key: bytes | None, max_bytes: int) -> Item | Rejection:
    """Parse and validate one item record; never raises."""
    payload = json_object(value, max_bytes)
    if isinstance(payload, Rejection):
        return payload
    problems = _problems(payload)
    if problems:
        code = next(code for code in _CODES if any(found == code for found, _ in problems))
        return Rejection(code, "; ".join(detail for _, detail in problems))
    item = Item(
        payload.get("item_id", UNNUMBERED),
        payload["title"].strip(),
        payload.get("year"),
        tuple(g.strip() for g in payload.get("genres") or ()),
        payload.get("source_id"),
        tuple((name, text.strip()) for name, text in payload.items() if name not in KNOWN),
    )
    if key is not None and key != record_key(item):
        named = f"item id {item.item_id}" if item.item_id != UNNUMBERED else f"source_id {item.source_id!r}"
        return Rejection("key_mismatch", f"key {key[:40]!r} is not the {named}")
    return item


def item_value(record: Mapping[str, Any]) -> bytes:
    """A record's compact UTF-8 JSON value."""
    return json.dumps(dict(record), ensure_ascii=False, separators=(",", ":")).encode()


def publish_items(kafka: KafkaSettings, records: Iterable[Mapping[str, Any]], timeout_s: float = 30.0) -> int:
    """Send item records (JSON objects as dicts) keyed by ``record_key``; waits for every acknowledgement.

    Every record is checked with ``decode_item`` first (ValueError names the first invalid one,
    and nothing is sent); PublishError when the broker did not acknowledge one. Returns the count.
    """
    values = [item_value(record) for record in records]
    items = []
    for position, value in enumerate(values):
        decoded = decode_item(value, None, kafka.max_item_bytes)
        if isinstance(decoded, Rejection):
            raise ValueError(f"item record {position} is invalid: {decoded.reason}")
        items.append(decoded)
    producer = KafkaProducer(**producer_options(kafka, client_id="kdrec-item-producer"))
    try:
        futures = [
            producer.send(kafka.items_topic, key=record_key(item), value=value)
            for item, value in zip(items, values, strict=True)
        ]
        producer.flush(timeout=timeout_s)
        failed = [future.exception for future in futures if future.failed() or not future.is_done]
    finally:
        producer.close(timeout=timeout_s)
    if failed:
        raise PublishError(f"{len(failed)} item record(s) not delivered; first error: {failed[0]!r}")
    return len(values)
