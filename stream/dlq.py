"""The dead-letter topic: messages that are not valid events, kept byte for byte with the reason.

Layout (chosen: headers, not an envelope). The DLQ record's **value is the original value
unchanged** and its **key the original key**, so a fixed record can be re-published to the
events topic as it is, and bytes that are not even UTF-8 survive. The original headers are
kept (a record with neither key nor value gets the empty key, as kafka-python needs one of
them), and kdrec adds:

* ``kdrec.reason``: UTF-8 ``"<code>: <detail>"`` (e.g. ``"unknown_item: item_id 99 is not in
  the catalogue"``), at most 1000 bytes;
* ``kdrec.error``: the short code alone (``invalid_json``, ``missing_field``, ``wrong_type``,
  ``invalid_field``, ``oversized``, ``unknown_item``, ``empty``, or a caller's own);
* ``kdrec.source``: ``"<topic>:<partition>:<offset>"`` of the original record, when known;
* ``kdrec.failed_at``: epoch milliseconds when it was dead-lettered, as decimal text.

A record batch the consumer could not decode at all (``stream.poison``) becomes ONE dead letter
with code ``undecodable_batch``: its value is the raw record batch as the broker sent it (when at
most ``stream.poison.MAX_RAW_BATCH_BYTES``; else no value), and ``kdrec.skipped_offsets`` says which offsets
were skipped, as ``"<first>-<last>"``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from stream.events import Rejection

HEADER_REASON = "kdrec.reason"
HEADER_ERROR = "kdrec.error"
HEADER_SOURCE = "kdrec.source"
HEADER_FAILED_AT = "kdrec.failed_at"
HEADER_SKIPPED = "kdrec.skipped_offsets"
KDREC_HEADERS = (HEADER_REASON, HEADER_ERROR, HEADER_SOURCE, HEADER_FAILED_AT)
MAX_REASON_BYTES = 1000

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class Source:
    """Where a record came from."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Source:
        topic, partition, offset = text.rsplit(":", 2)
        return cls(topic, int(partition), int(offset))


def dead_letter_headers(
    rejection: Rejection, source: Source | None = None, original: Headers = (), failed_at_ms: int | None = None
) -> list[tuple[str, bytes]]:
    """The original headers (kdrec's own dropped) followed by reason, code, source and time."""
    failed_at = time.time_ns() // 1_000_000 if failed_at_ms is None else failed_at_ms
    reason = rejection.reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore").encode()
    headers = [(name, value) for name, value in original if name not in KDREC_HEADERS]
    headers += [(HEADER_REASON, reason), (HEADER_ERROR, rejection.code.encode())]
    if source is not None:
        headers.append((HEADER_SOURCE, str(source).encode()))
    headers.append((HEADER_FAILED_AT, str(failed_at).encode()))
    return headers


class DeadLetters:
    """Sends rejected records to the dead-letter topic through a caller-owned ``KafkaProducer``."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def send(
        self,
        value: bytes | None,
        rejection: Rejection | str,
        *,
        key: bytes | None = None,
        source: Source | None = None,
        headers: Headers = (),
    ) -> FutureRecordMetadata:
        """Queue the original ``value``/``key``/``headers`` with the reason (asynchronous)."""
        if isinstance(rejection, str):
            rejection = Rejection("rejected", rejection)
        if key is None and value is None:
            key = b""  # kafka-python cannot send a record with neither key nor value
        return self.producer.send(
            self.topic, key=key, value=value, headers=dead_letter_headers(rejection, source, headers)
        )


@dataclass(frozen=True)
class DeadLetter:
    """A record read back from the dead-letter topic."""

    value: bytes | None
    key: bytes | None
    reason: str
    code: str
    source: Source | None
    failed_at_ms: int | None
    headers: tuple[tuple[str, bytes], ...]
    """The original record's headers."""
    skipped: tuple[int, int] | None = None
    """First and last offset of a skipped, undecodable batch."""

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        """From a kafka-python ``ConsumerRecord`` of the dead-letter topic."""
        headers = list(getattr(record, "headers", None) or [])
        found = {
            name: value.decode(errors="replace")
            for name, value in headers
            if name in KDREC_HEADERS and value is not None
        }
        return cls(
            value=record.value,
            key=record.key,
            reason=found.get(HEADER_REASON, ""),
            code=found.get(HEADER_ERROR, ""),
            source=Source.parse(found[HEADER_SOURCE]) if HEADER_SOURCE in found else None,
            failed_at_ms=int(found[HEADER_FAILED_AT]) if HEADER_FAILED_AT in found else None,
            headers=tuple((n, v) for n, v in headers if n not in KDREC_HEADERS),
            skipped=_offsets(headers),
        )


def _offsets(headers: Headers) -> tuple[int, int] | None:
    for name, value in headers:
        if name == HEADER_SKIPPED and value:
            first, last = value.decode().split("-")
            return int(first), int(last)
    return None
