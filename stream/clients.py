"""The stream consumer's Kafka side: one group member on the events topic and one producer for
the dead-letter and recommendations topics, built, used and closed together.

Offsets are committed explicitly (auto-commit is off) and only through ``settle``: a batch's
dead letters and recommendations are queued by ``publish`` together with the offsets that
follow its records; ``settle`` takes the offsets of the oldest batches whose sends have ALL
been acknowledged, in batch order, and commits them at most every ``commit_interval_s`` (as
Kafka Streams and Quix Streams do: a commit per batch costs the loop a request per batch, and
a crash only redelivers a little more, which the idempotent SQL sink absorbs). So the loop can
poll and apply the next batch while the broker acknowledges the previous one (no flush round
trip on the hot path), and an offset is never committed before its batch's SQL commit and
sends. Commits are asynchronous (a lost one only means a redelivery) except the last ones, on
close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata

from core.settings import KafkaSettings
from stream.dlq import DeadLetters, Source
from stream.events import Rejection
from stream.fetch_wait import FetchWait
from stream.net import any_reachable
from stream.poison import PoisonPolicy, guard
from stream.producer import producer_options
from stream.recommendations import RecommendationMessage
from stream.topics import ensure_topics

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list]
Offsets = dict[TopicPartition, OffsetAndMetadata]


class BrokerUnavailable(RuntimeError):
    """The broker does not accept connections, or did not acknowledge what was sent."""


class Backoff:
    """Exponential delays ``initial * 2^n`` capped at ``maximum``; ``reset()`` after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2**self.attempt)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class InFlight:
    """One applied batch whose sends are not all acknowledged yet."""

    offsets: Offsets
    futures: list[Any]
    payload: Any = None
    """The caller's data, handed back when the batch settles."""
    acked: list[int] = field(default_factory=list)
    acked_ms: int | None = None
    """When the last send was acknowledged (epoch ms)."""

    def __post_init__(self) -> None:
        if not self.futures:
            self.acked_ms = time.time_ns() // 1_000_000
        for future in self.futures:  # called from the producer's I/O thread
            future.add_both(self._one_done)

    def _one_done(self, _result: object) -> None:
        self.acked.append(1)  # list.append is atomic; a counter += would not be
        if len(self.acked) >= len(self.futures):
            self.acked_ms = time.time_ns() // 1_000_000

    @property
    def complete(self) -> bool:
        return len(self.acked) >= len(self.futures)


class Flusher:
    """A thread that flushes the producer whenever ``kick()`` is called: a batch's records go out
    together (one sender wake-up, few requests) without the consumer loop waiting for acks."""

    def __init__(self, producer: KafkaProducer, timeout_s: float) -> None:
        self.producer = producer
        self.timeout_s = timeout_s
        self.error: BaseException | None = None
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kdrec-flusher", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping:
                return
            self._wanted.clear()
            try:
                self.producer.flush(timeout=self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - reported by settle() in the consumer thread
                self.error = exc

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join(self.timeout_s)


def next_offsets(polled: Polled) -> Offsets:
    """The offsets to commit once every record of ``polled`` is applied (a skipped batch, last in
    its partition's list, names its own next offset)."""
    return {
        partition: OffsetAndMetadata(getattr(batch[-1], "next_offset", batch[-1].offset + 1), "", -1)
        for partition, batch in polled.items()
    }


class Clients:
    """The consumer group member and the output producer (see the module docstring)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        client_id: str,
        send_timeout_s: float = 30.0,
        fetch_wait: FetchWait | None = None,
        commit_interval_s: float = 0.0,
        poison: PoisonPolicy | None = None,
    ) -> None:
        self.kafka = kafka
        self.commit_interval_s = commit_interval_s
        servers = kafka.bootstrap_servers
        if not any_reachable(servers):
            raise BrokerUnavailable(f"no broker accepts connections at {servers}")
        ensure_topics(kafka)  # idempotent; an in-memory broker loses its topics when it restarts
        self.fetch_wait = fetch_wait or FetchWait(kafka)
        self.consumer = KafkaConsumer(
            kafka.events_topic,
            **kafka.client_options(),
            client_id=client_id,
            group_id=kafka.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=kafka.max_poll_records,
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            fetch_max_wait_ms=self.fetch_wait.current_ms,
        )
        self.fetch_wait.attach(self.consumer)
        try:
            guard(self.consumer, poison or PoisonPolicy())
        except BaseException:
            self.consumer.close(autocommit=False)
            raise
        try:
            # Records wait (long linger) until the flusher thread flushes a whole consumer batch,
            # and record batches are large: the sender thread wakes up a few times per consumer
            # batch, not per record or per 16 KB (measured: ~35% less time per send).
            self.producer = KafkaProducer(
                **producer_options(kafka, client_id=client_id, linger_ms=1000, batch_size=256 * 1024)
            )
        except BaseException:
            self.consumer.close(autocommit=False)
            raise
        try:
            for topic in (kafka.recommendations_topic, kafka.dlq_topic):
                self.producer.partitions_for(topic)  # metadata now, not inside the first batch's sends
        except BaseException:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=1)
            raise
        self.dead_letters = DeadLetters(self.producer, kafka.dlq_topic)
        self.uncommitted: Offsets = {}
        self.settled: Offsets = {}
        """Offsets of settled batches, not yet handed to a commit."""
        self._committed_at = time.monotonic()
        self.in_flight: deque[InFlight] = deque()
        self.flusher = Flusher(self.producer, send_timeout_s)

    def reachable(self) -> bool:
        return any_reachable(self.kafka.bootstrap_servers)

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def poll(self, timeout_ms: int) -> Polled:
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        self.fetch_wait.observe(bool(polled))
        return polled

    def publish(
        self,
        rejected: Sequence[tuple[Any, Rejection]],
        messages: Sequence[RecommendationMessage],
        offsets: Offsets,
        payload: object = None,
    ) -> InFlight:
        """Queue a batch's dead letters and recommendations; its ``offsets`` wait for ``settle``."""
        futures = []
        for record, rejection in rejected:
            futures.append(
                self.dead_letters.send(
                    record.value,
                    rejection,
                    key=record.key,
                    source=Source(record.topic, record.partition, record.offset),
                    headers=list(record.headers or ()),
                )
            )
        topic = self.kafka.recommendations_topic
        for message in messages:
            futures.append(self.producer.send(topic, key=message.key(), value=message.to_json()))
        entry = InFlight(offsets, futures, payload)
        self.in_flight.append(entry)
        if futures:
            self.flusher.kick()
        return entry

    def settle(self, wait: bool, timeout_s: float) -> list[InFlight]:
        """Take the offsets of the oldest batches whose sends were all acknowledged, in order, and
        commit them once ``commit_interval_s`` has passed since the last commit; ``wait``: first
        wait for every queued send, then commit at once. Raises ``BrokerUnavailable`` when a send
        failed."""
        if self.flusher.error is not None:
            raise BrokerUnavailable(f"flushing the producer failed: {self.flusher.error!r}")
        if wait and self.in_flight and not self.in_flight[-1].complete:
            self.producer.flush(timeout=timeout_s)
        settled: list[InFlight] = []
        while self.in_flight and self.in_flight[0].complete:
            entry = self.in_flight[0]
            failed = [future.exception for future in entry.futures if future.failed()]
            if failed:
                raise BrokerUnavailable(f"{len(failed)} of {len(entry.futures)} sends failed: {failed[0]!r}")
            self.in_flight.popleft()
            self.settled.update(entry.offsets)
            settled.append(entry)
        if self.settled and (wait or time.monotonic() - self._committed_at >= self.commit_interval_s):
            self.commit(self.settled)
            self.settled = {}
        return settled

    def commit(self, offsets: Offsets) -> None:
        """Commit asynchronously (a lost commit only means a redelivery)."""
        self._committed_at = time.monotonic()
        self.uncommitted.update(offsets)
        self.consumer.commit_async(offsets, callback=self._committed)

    def _committed(self, offsets: Offsets, response: object) -> None:
        if isinstance(response, Exception):
            log.warning("offset commit failed (%s); those records will be redelivered", response)
            return
        for partition, offset in offsets.items():
            if self.uncommitted.get(partition) == offset:
                del self.uncommitted[partition]

    def seek_back(self, polled: Polled) -> None:
        """Fetch the records of ``polled`` again on the next poll (partitions still owned)."""
        assigned = self.consumer.assignment()
        for partition, batch in polled.items():
            if partition in assigned:
                self.consumer.seek(partition, batch[0].offset)

    def close(self, final_commit: bool, timeout_s: float = 10.0) -> list[InFlight]:
        """Settle what is in flight and commit it synchronously (when asked and possible), then
        close; returns the batches settled here."""
        settled: list[InFlight] = []
        if final_commit:
            try:
                settled = self.settle(wait=True, timeout_s=timeout_s)
            except (KafkaError, BrokerUnavailable) as exc:
                log.warning("could not settle the last batches (%s); they will be redelivered", exc)
        if final_commit and self.uncommitted:
            try:
                self.consumer.commit(dict(self.uncommitted), timeout_ms=5000)
            except (CommitFailedError, RebalanceInProgressError, KafkaError) as exc:
                log.warning("final offset commit failed (%s); the last batch may be redelivered", exc)
        self.flusher.stop()
        for name, close in (
            ("consumer", lambda: self.consumer.close(autocommit=False, timeout_ms=2000)),
            ("producer", lambda: self.producer.close(timeout=2)),
        ):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - closing a client of a dead broker may fail
                log.debug("closing the %s failed: %s", name, exc)
        return settled
