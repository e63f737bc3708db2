"""Poison pills: record batches the client cannot decode never stop a partition.

A record batch can be undecodable for kafka-python: a codec it has no library for, a corrupt
or truncated compressed payload, a failed CRC. kafka-python then raises from ``poll`` without
moving the partition's position, so the next poll fetches the same batch and fails again:
one bad batch would stop its partition for good.

``guard(consumer, policy)`` makes the consumer's fetcher decode through ``GuardedRecords``,
which tracks the batch being decoded. When decoding it fails, the failure is counted per
(partition, first offset of the batch): the first ``policy.attempts - 1`` times it raises
``PoisonRetry`` (the caller backs off and polls again: the same batch is fetched anew, so a
transient fault heals); at the last attempt the batch is skipped. A ``PoisonBatch`` takes its
place in the polled records: it names topic, partition, the offsets skipped and the reason,
and keeps the batch's raw bytes, so the caller dead-letters it and commits past it like any
other record. Nothing is skipped silently.

This reaches into kafka-python's fetcher (its ``PartitionRecords`` class, looked up on the
fetcher instance): ``guard`` checks that the hook exists and fails loudly otherwise, and the
test suite covers it with a real broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

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
    retries: int = 0
    """Decoding failures that were retried (not skipped), over the policy's life."""

    def failed(self, partition: TopicPartition, first_offset: int) -> int:
        """Count a failure; returns the attempt number it was."""
        key = (partition, first_offset)
        self.failures[key] = self.failures.get(key, 0) + 1
        return self.failures[key]

    def forget(self, partition: TopicPartition, first_offset: int) -> None:
        self.failures.pop((partition, first_offset), None)


class _Tracked:
    """A ``MemoryRecords`` that remembers the batch it handed out last."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.current: Any = None

    def next_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.current = self.records.next_batch(*args, **kwargs)
        return self.current

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)


def _batch_offsets(batch: Any) -> tuple[int, int]:
    first = int(batch.base_offset)
    last = getattr(batch, "last_offset", None)
    return first, int(last) if last is not None else first


def _raw(batch: Any) -> bytes | None:
    buffer = getattr(batch, "_buffer", None)
    return bytes(buffer) if buffer is not None and len(buffer) <= MAX_RAW_BATCH_BYTES else None


def guarded_records_class(base: type, policy: PoisonPolicy) -> type:
    """A subclass of kafka-python's ``Fetcher.PartitionRecords`` that applies ``policy``."""

    class GuardedRecords(base):  # a subclass of the class kafka-python has, found at run time
        next_fetch_offset: int

        def _unpack_records(
            self, tp: TopicPartition, records: Any, key_deserializer: Any, value_deserializer: Any
        ) -> Any:
            tracked = _Tracked(records)
            try:
                yield from super()._unpack_records(tp, tracked, key_deserializer, value_deserializer)
            except Exception as exc:
                batch = tracked.current
                if batch is None:
                    raise
                first, last = _batch_offsets(batch)
                attempt = policy.failed(tp, first)
                if attempt < policy.attempts:
                    # Drained, so the next poll fetches the batch anew from the unmoved position
                    # (a raising iterator left undrained would be taken from forever).
                    self.drain()
                    policy.retries += 1
                    retry = PoisonRetry(tp, first, attempt, exc)
                    log.warning("%s; fetching it again (skipped after %d attempts)", retry, policy.attempts)
                    raise retry from exc
                policy.forget(tp, first)
                start = max(first, self.next_fetch_offset)  # records before it were returned already
                reason = (
                    f"record batch {tp.topic}:{tp.partition} offsets {start}..{last} could not be decoded "
                    f"after {attempt} attempts ({describe(exc)}); skipped"
                )
                log.error("%s", reason)
                self.next_fetch_offset = last + 1
                yield PoisonBatch(tp.topic, tp.partition, start, last, reason, value=_raw(batch))
                self.drain()

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
