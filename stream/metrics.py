"""Counters, per-stage timings and latencies of the stream consumer (for logs and benchmarks).

Stages of one batch, in order (seconds summed over batches):

* ``poll``: waiting in ``KafkaConsumer.poll`` for records that came back non-empty;
* ``decode``: bytes -> validated ``ClickEvent`` or ``Rejection`` (``stream.events``);
* ``sql``: ``append_events`` (idempotent insert + sequence update) inside the transaction;
* ``encode``: the active student's forward pass over every touched user's sequence;
* ``search``: the FAISS top-K search with each user's seen items excluded;
* ``write``: inserting the recommendation rows and committing the SQL transaction;
* ``publish``: queueing the recommendations and dead letters for the producer;
* ``commit``: committing the offsets of the batches whose sends were acknowledged (including
  any wait for acknowledgements when too many batches are in flight).

Latency of an event: the moment its recommendation was acknowledged on the recommendations
topic minus the event's Kafka record timestamp (the producer's send time, same host clock
for local runs). Only the newest ``max_latencies`` values are kept.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # stream.batch imports this module
    from stream.batch import Applied, Decoded
    from stream.poison import PoisonBatch

STAGES = ("poll", "decode", "sql", "encode", "search", "write", "publish", "commit")


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    data = sorted(values)
    if not data:
        return math.nan
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


@dataclass
class ConsumerMetrics:
    """Everything a consumer has done since it started; cheap to update from the hot loop."""

    max_latencies: int = 200_000
    batches: int = 0
    records: int = 0
    valid: int = 0
    rejected: int = 0
    inserted: int = 0
    duplicates: int = 0
    recommendations: int = 0
    republished: int = 0
    batch_retries: int = 0
    poison_retries: int = 0
    """Polls that failed on a record batch that could not be decoded (retried after a backoff)."""
    skipped_batches: int = 0
    skipped_offsets: int = 0
    """Offsets of undecodable batches skipped (each dead-lettered and recorded in SQL)."""
    broker_outages: int = 0
    broker_recoveries: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    latencies_ms: deque[float] = field(init=False)
    first_batch_at: float | None = None
    last_batch_at: float | None = None
    last_settled_at: float | None = None
    """When the newest batch's sends were acknowledged and its offsets committed."""
    longest_gap_s: float = 0.0
    """Longest wall time between the end of one batch and the start of the next one that
    had records waiting (i.e. a poll that returned at once): pauses the consumer caused."""
    model_versions: dict[int, int] = field(default_factory=dict)
    """Recommendations written per model version id."""
    batch_log: deque[tuple[float, float, int, int | None]] = field(init=False)
    """The newest batches as ``(started, ended, records, model version)`` (perf_counter times)."""

    def __post_init__(self) -> None:
        self.latencies_ms = deque(maxlen=self.max_latencies)
        self.batch_log = deque(maxlen=20_000)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - started

    def add_stage(self, name: str, seconds: float) -> None:
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds

    def count_batch(
        self, records: int, decoded: Decoded, applied: Applied, skipped: list[PoisonBatch], poison_retries: int
    ) -> None:
        """Add one applied batch: its ``records`` polled, what decoding and SQL made of them, the
        undecodable batches skipped in it, and the poison retries so far."""
        self.records += records
        self.skipped_batches += len(skipped)
        self.skipped_offsets += sum(batch.count for batch in skipped)
        self.poison_retries = poison_retries
        self.valid += len(decoded.valid)
        self.rejected += len(decoded.rejected)
        self.inserted += applied.inserted
        self.duplicates += applied.duplicates
        fresh = [message for message in applied.messages if not message.replayed]
        self.recommendations += len(fresh)
        self.republished += len(applied.messages) - len(fresh)
        if applied.model_version is not None and fresh:
            self.model_versions[applied.model_version] = self.model_versions.get(applied.model_version, 0) + len(fresh)

    def batch_done(self, started: float, ended: float, records: int, backlog: bool, version: int | None = None) -> None:
        """Record one processed batch; ``backlog``: its records were already waiting."""
        if self.first_batch_at is None:
            self.first_batch_at = started
        elif backlog and self.last_batch_at is not None:
            self.longest_gap_s = max(self.longest_gap_s, started - self.last_batch_at)
        self.last_batch_at = ended
        self.batches += 1
        self.batch_log.append((started, ended, records, version))

    def latency_summary(self) -> dict[str, float]:
        values = list(self.latencies_ms)
        return {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p95_ms": percentile(values, 95),
            "p99_ms": percentile(values, 99),
            "max_ms": max(values, default=math.nan),
        }

    def stage_ms_per_batch(self) -> dict[str, float]:
        return {name: 1000 * seconds / max(self.batches, 1) for name, seconds in self.stage_seconds.items()}

    def stage_us_per_event(self) -> dict[str, float]:
        return {name: 1e6 * seconds / max(self.records, 1) for name, seconds in self.stage_seconds.items()}

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able summary."""
        busy = (self.last_batch_at - self.first_batch_at) if self.first_batch_at and self.last_batch_at else 0.0
        return {
            "batches": self.batches,
            "records": self.records,
            "valid": self.valid,
            "rejected": self.rejected,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "recommendations": self.recommendations,
            "republished": self.republished,
            "batch_retries": self.batch_retries,
            "broker_outages": self.broker_outages,
            "broker_recoveries": self.broker_recoveries,
            "poison_retries": self.poison_retries,
            "skipped_batches": self.skipped_batches,
            "skipped_offsets": self.skipped_offsets,
            "active_seconds": busy,
            "longest_gap_s": self.longest_gap_s,
            "stage_seconds": dict(self.stage_seconds),
            "latency": self.latency_summary(),
            "model_versions": dict(self.model_versions),
        }
