"""Poison pills: record batches the client cannot decode never stop a partition.

A record batch can be undecodable for kafka-python: a codec it has no library for, a corrupt
or truncated compressed payload, a failed CRC. kafka-python then raises from ``poll`` without
moving the partition's position, so the next poll fetches the same batch and fails again:
one bad batch would stop its partition for good.

``guard(consumer, policy)`` makes the consumer's fetcher decode through ``GuardedRecords``,
which tracks the raw bytes of the batch being decoded. When decoding fails with records of the
fetch already returned, those are returned and the fetch ends: the bad batch comes first in the
next one. When it fails first, the failure is counted per (partition, base offset of the batch):
the first ``policy.attempts - 1`` times it raises ``PoisonRetry`` (the caller backs off and polls
again: the batch is fetched anew, so a transient fault heals); at the last attempt the batch is
skipped. A ``PoisonBatch`` takes its place in the polled records: it names topic, partition,
the offsets skipped and the reason, and keeps the batch's raw bytes, so the caller dead-letters
it and commits past it like any other record. Nothing is skipped silently.

Which offsets: the header's last offset only when the batch's CRC holds (the header is inside
the CRC), and never past the next batch of the same fetch; with neither, one offset at a time
(the broker answers a fetch inside a batch with the whole batch, which is then skipped at once,
offset by offset, without new retries).

This reaches into kafka-python's fetcher (its ``PartitionRecords`` class, looked up on the
fetcher instance): ``guard`` checks that the hook exists and fails loudly otherwise, and the
test suite covers it with a real broker.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.record.default_records import DefaultRecordBatch

from stream.dlq import HEADER_SKIPPED

log = logging.getLogger(__name__)

MAX_RAW_BATCH_BYTES = 512 * 1024
"""Larger raw batches are not copied into the dead letter (it must fit one produce request)."""


class PoisonRetry(Exception):
    """A batch failed to decode; poll again after a backoff (the batch is not skipped yet)."""

    def __init__(self, partition: TopicPartition, first_offset: int, attempt: int, cause: BaseException) -> None:
        super().__init__(
            f"record batch at {partition.topic}:{partition.partition}:{first_offset} could not be "
            f"decoded (attempt {attempt}): {describe(cause)}"
        )
        self.partition, self.first_offset, self.attempt, self.cause = partition, first_offset, attempt, cause


@dataclass(frozen=True)
class PoisonBatch:
    """A skipped record batch, in place of its records (looks enough like a ``ConsumerRecord``
    for the dead-letter path: ``topic``, ``partition``, ``offset``, ``key``, ``value``, ``headers``)."""

    topic: str
    partition: int
    offset: int
    """The batch's first offset."""
    last_offset: int
    reason: str
    value: bytes | None = None
    """The raw record batch as the broker sent it (compressed payload included), when known."""
    key: bytes | None = None
    timestamp: int | None = None
    fingerprint: int = 0
    """CRC-32 of the raw batch: tells two skips at the same offsets apart (an in-memory broker
    that restarted reuses offsets)."""

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return [(HEADER_SKIPPED, f"{self.offset}-{self.last_offset}".encode())]

    @property
    def count(self) -> int:
        return self.last_offset - self.offset + 1


def describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc).strip()
    return text if text.startswith(name) else f"{name}: {text}".rstrip(": ")


@dataclass
class PoisonPolicy:
    """How many decoding attempts a batch gets before it is skipped (1: skip at once)."""

    attempts: int = 3
    failures: dict[tuple[TopicPartition, int], int] = field(default_factory=dict)
    """Failed attempts per (partition, first offset of the batch), until it decodes or is skipped."""
    condemned: dict[TopicPartition, int] = field(default_factory=dict)
    """Per partition, the first offset of the batch being skipped: when its end could not be
    trusted, the rest of it is skipped at once, offset by offset."""
    retries: int = 0
    """Decoding failures that were retried (not skipped), over the policy's life."""

    def failed(self, partition: TopicPartition, first_offset: int) -> int:
        """Count a failure; returns the attempt number it was."""
        if self.condemned.get(partition) == first_offset:
            return self.attempts
        key = (partition, first_offset)
        self.failures[key] = self.failures.get(key, 0) + 1
        return self.failures[key]

    def skipped(self, partition: TopicPartition, first_offset: int) -> None:
        self.failures.pop((partition, first_offset), None)
        self.condemned[partition] = first_offset

    def decoded_up_to(self, partition: TopicPartition, next_offset: int) -> None:
        """Forget what concerns batches of ``partition`` before ``next_offset`` (they decoded, or
        the position moved past them)."""
        for key in [key for key in self.failures if key[0] == partition and key[1] < next_offset]:
            del self.failures[key]
        if partition in self.condemned and self.condemned[partition] < next_offset:
            del self.condemned[partition]


def _base_offset(raw: Any) -> int | None:
    """The base offset of a raw batch slice (its first 8 bytes, outside the CRC)."""
    return int(struct.unpack_from(">q", raw, 0)[0]) if raw is not None and len(raw) >= 8 else None


class _Tracked:
    """A ``MemoryRecords`` that remembers the raw slice and the batch it handed out last."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.raw: Any = None
        self.current: Any = None

    def next_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.raw = getattr(self.records, "_next_slice", None)  # zero-copy view of the bytes to decode
        self.current = None
        self.current = self.records.next_batch(*args, **kwargs)
        return self.current

    def following_base(self) -> int | None:
        """The base offset of the batch after the current one in this fetch, if any."""
        return _base_offset(getattr(self.records, "_next_slice", None)) if self.current is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)


def _trusted_last(raw: Any) -> int | None:
    """The last offset of a raw v2 batch when its header can be believed (its CRC holds).
    Read from the raw bytes: a batch object that decompressed holds its payload, not its header."""
    if raw is None or len(raw) < DefaultRecordBatch.HEADER_STRUCT.size:
        return None
    try:
        header = DefaultRecordBatch(bytes(raw))
        return int(header.last_offset) if header.magic >= 2 and header.validate_crc() else None
    except Exception:  # noqa: BLE001 - an unreadable header is an untrusted one
        return None


def skip_range(start: int, tracked: _Tracked) -> int:
    """The last offset to skip from ``start``: the header's last offset when its CRC holds, never
    past the next batch in the fetch; else up to that next batch; else ``start`` alone."""
    last = _trusted_last(tracked.raw)
    bound = tracked.following_base()
    if bound is not None and bound > start:
        last = bound - 1 if last is None else min(last, bound - 1)
    return last if last is not None and last >= start else start


def guarded_records_class(base: type, policy: PoisonPolicy) -> type:
    """A subclass of kafka-python's ``Fetcher.PartitionRecords`` that applies ``policy``."""

    class GuardedRecords(base):  # a subclass of the class kafka-python has, found at run time
        next_fetch_offset: int

        def _unpack_records(
            self, tp: TopicPartition, records: Any, key_deserializer: Any, value_deserializer: Any
        ) -> Any:
            tracked = _Tracked(records)
            yielded = False
            try:
                for record in super()._unpack_records(tp, tracked, key_deserializer, value_deserializer):
                    yielded = True
                    yield record
            except Exception as exc:
                # Drained in every case: a raising iterator left undrained would be taken from
                # forever, and the next fetch starts from the unmoved position.
                first = _base_offset(tracked.raw)
                if first is None:
                    raise
                if yielded:  # the records before it are returned first; it fails again, alone, next poll
                    self.drain()
                    return
                attempt = policy.failed(tp, first)
                if attempt < policy.attempts:
                    self.drain()
                    policy.retries += 1
                    retry = PoisonRetry(tp, first, attempt, exc)
                    log.warning("%s; fetching it again (skipped after %d attempts)", retry, policy.attempts)
                    raise retry from exc
                start = max(first, self.next_fetch_offset)  # records before it were returned already
                last = skip_range(start, tracked)
                policy.skipped(tp, first)
                reason = (
                    f"record batch {tp.topic}:{tp.partition} offsets {start}..{last} could not be decoded "
                    f"after {attempt} attempts ({describe(exc)}); skipped"
                )
                log.error("%s", reason)
                raw = bytes(tracked.raw)
                self.next_fetch_offset = last + 1
                yield PoisonBatch(
                    tp.topic,
                    tp.partition,
                    start,
                    last,
                    reason,
                    value=raw if len(raw) <= MAX_RAW_BATCH_BYTES else None,
                    fingerprint=zlib.crc32(raw),
                )
                self.drain()
            else:
                if policy.failures or policy.condemned:
                    policy.decoded_up_to(tp, self.next_fetch_offset)

    return GuardedRecords


def guard(consumer: KafkaConsumer, policy: PoisonPolicy) -> None:
    """Make ``consumer`` skip undecodable batches by ``policy`` (see the module docstring)."""
    fetcher = getattr(consumer, "_fetcher", None)
    base = getattr(fetcher, "PartitionRecords", None)
    if fetcher is None or not isinstance(base, type) or not hasattr(base, "_unpack_records"):
        raise RuntimeError(
            "this kafka-python version has no Fetcher.PartitionRecords._unpack_records: "
            "kdrec cannot guard its consumer against undecodable batches"
        )
    fetcher.PartitionRecords = guarded_records_class(base, policy)
