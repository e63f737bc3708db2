"""The live item feed: new items on the items topic -> SQL -> served from their text at once.

A background thread of the stream consumer process (``stream.consumer``), off its hot path.
For each polled batch of item records (``stream.items``):

1. decode every record; invalid ones are set aside with their reason;
2. ONE SQL transaction upserts the valid ones (``store.catalogue.upsert_item``, idempotent;
   a record naming only its source id is numbered first, ``store.catalogue.numbered``); an
   id that would leave a gap rejects that record only (``item_id_gap``: the check comes before
   any write), then COMMIT. From then on the stream accepts clicks on the new items
   (``stream.batch.Catalogue`` looks unknown ids up in SQL);
3. the serving student learns nothing, but its text map (``core.distill.text_map``) turns each
   new item's LM text encoding (``core.text.live.TextEncoder``) into a vector in its space, and
   ``LoadedVersion.add_text_items`` swaps in a copy of the FAISS index holding it: the item is
   recommendable at once;
4. rejected records go to the items dead-letter topic (``stream.dlq``), acknowledged;
5. the batch's offsets are committed. A crash before that redelivers the batch, which changes
   nothing: the upserts are idempotent and the index already holds those items.

Between polls the serving index also follows SQL itself (``stream.text_serving``): a newly
active version (and the first at start-up) gets every item beyond what it learnt, and every
``sync_every_s`` items beyond its index are added (so the other consumer processes, whose feeds
do not own the single items partition, serve new items within that delay). Without a text map
items are still stored and clickable; they are recommended from the next refit on.

A record batch that cannot be decoded at all (a codec this client lacks, a corrupt payload) is
fetched again up to ``poison_attempts`` times, then skipped as one dead letter naming its offsets
(``stream.poison``), as the click consumer does: it never stops the items partition.

The broker away: clients are closed, and the feed reconnects with backoff and resumes from the
committed offsets. The database away: the batch is not committed and comes again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from core.data.dataset import Item
from core.settings import KafkaSettings
from core.text.live import TextEncoder
from store.active import ActiveModel
from store.catalogue import ItemIdGap, numbered, upsert_item
from stream.batch import skip_rejection
from stream.clients import Backoff, BrokerUnavailable, next_offsets
from stream.dlq import DeadLetters, Source
from stream.events import Rejection
from stream.fetch_wait import FetchWait
from stream.items import decode_item
from stream.net import any_reachable
from stream.poison import PoisonBatch, PoisonPolicy, PoisonRetry, guard
from stream.producer import producer_options
from stream.text_serving import TextServing
from stream.topics import ensure_topics

log = logging.getLogger(__name__)


class ItemFeed:
    """Follows the items topic in a daemon thread: ``start()``, then ``stop()``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        sessions: sessionmaker[Session],
        active: ActiveModel,
        encoder: TextEncoder,
        *,
        read_sessions: sessionmaker[Session] | None = None,
        poll_timeout_ms: int = 500,
        probe_every_s: float = 2.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        send_timeout_s: float = 30.0,
        sync_every_s: float = 2.0,
        poison_attempts: int = 3,
        client_id: str = "kdrec-item-feed",
    ) -> None:
        self.kafka = kafka
        self.sessions = sessions
        self.serving = TextServing(
            active,
            read_sessions or sessions,
            encoder,
            sync_every_s=sync_every_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
        )
        self.poll_timeout_ms = poll_timeout_ms
        self.probe_every_s = probe_every_s
        self.send_timeout_s = send_timeout_s
        self.client_id = client_id
        self.group = f"{kafka.consumer_group}.items"
        self.counts: Counter[str] = Counter()
        """Item records ``inserted``, ``updated``, ``unchanged`` and ``rejected`` so far, and the
        undecodable batches ``skipped_batches`` (their records are not counted as rejected)."""
        self.poison = PoisonPolicy(poison_attempts)
        self._poison_backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="kdrec-item-feed", daemon=True)
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._consumer: KafkaConsumer | None = None
        # kafka-python's default fetch wait (500 ms) is how long a new item would sit on the
        # embedded broker, which does not answer a held fetch when records arrive.
        self._fetch_wait = FetchWait(kafka)
        self._producer: KafkaProducer | None = None
        self._probed_at = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ItemFeed:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def connected(self) -> bool:
        return self._consumer is not None

    def run(self) -> None:
        log.info("item feed following %s (group %s)", self.kafka.items_topic, self.group)
        try:
            while not self._stop.is_set():
                self.serving.sync_if_due()
                if self._consumer is None and not self._connect():
                    continue
                try:
                    self._step()
                    self._backoff.reset()
                except Exception as exc:  # noqa: BLE001 - broker or database away: retried from the committed offsets
                    delay = self._backoff.next()
                    log.warning("item feed: %s: %s; reconnecting in %.1fs", type(exc).__name__, str(exc)[:200], delay)
                    self._close()
                    self._stop.wait(delay)
        finally:
            self._close()
            log.info("item feed stopped: %s, %d served from text", dict(self.counts), self.serving.served)

    # --- clients ---------------------------------------------------------------------------
    def _connect(self) -> bool:
        try:
            ensure_topics(self.kafka)  # idempotent; an in-memory broker loses its topics on restart
            self._consumer = KafkaConsumer(
                self.kafka.items_topic,
                **self.kafka.client_options(),
                client_id=self.client_id,
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.kafka.session_timeout_ms,
                heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
                max_poll_records=self.kafka.max_poll_records,
                fetch_max_wait_ms=self._fetch_wait.current_ms,
            )
            self._fetch_wait.attach(self._consumer)
            guard(self._consumer, self.poison)
            self._producer = KafkaProducer(**producer_options(self.kafka, client_id=f"{self.client_id}-dlq"))
        except Exception as exc:  # noqa: BLE001 - the broker is away (kafka-python raises several kinds)
            self._close()
            delay = self._backoff.next()
            log.warning("item feed: broker unavailable (%s); retrying in %.1fs", exc, delay)
            self._stop.wait(delay)
            return False
        self._probed_at = time.monotonic()
        return True

    def _close(self) -> None:
        consumer, producer, self._consumer, self._producer = self._consumer, self._producer, None, None
        for client in (consumer, producer):
            if client is None:
                continue
            try:
                client.close(**({"autocommit": False} if client is consumer else {"timeout": 5}))
            except Exception as exc:  # noqa: BLE001 - closing after a failure
                log.debug("item feed: closing %s: %s", type(client).__name__, exc)

    # --- one batch -------------------------------------------------------------------------
    def _step(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            polled = consumer.poll(timeout_ms=self.poll_timeout_ms)
        except PoisonRetry:  # logged where it was decoded; the batch is fetched again
            self._stop.wait(self._poison_backoff.next())
            return
        self._poison_backoff.reset()
        records = [record for batch in polled.values() for record in batch]
        self._fetch_wait.observe(bool(records))
        if not records:
            if time.monotonic() - self._probed_at >= self.probe_every_s:
                self._probed_at = time.monotonic()
                if not any_reachable(self.kafka.bootstrap_servers):
                    raise BrokerUnavailable(f"{self.kafka.bootstrap_servers} stopped accepting connections")
            return
        skipped = [record for record in records if isinstance(record, PoisonBatch)]
        changed, rejected = self._store([record for record in records if not isinstance(record, PoisonBatch)])
        if changed:
            self.serving.sync(changed)
        self._dead_letter(rejected + [(batch, skip_rejection(batch)) for batch in skipped])
        if skipped:
            self.counts["skipped_batches"] += len(skipped)
        consumer.commit(next_offsets(polled))
        self._probed_at = time.monotonic()

    def _store(self, records: list[Any]) -> tuple[list[Item], list[tuple[Any, Rejection]]]:
        """Upsert the valid records in one transaction; the items that changed and the rejections."""
        rejected: list[tuple[Any, Rejection]] = []
        outcomes: list[tuple[Item, str]] = []
        with self.sessions.begin() as session:
            for record in records:
                decoded = decode_item(record.value, record.key, self.kafka.max_item_bytes)
                if isinstance(decoded, Rejection):
                    rejected.append((record, decoded))
                    continue
                try:
                    item = numbered(session, decoded)
                    outcomes.append((item, upsert_item(session, item)))
                except ItemIdGap as exc:  # raised before any write: the transaction goes on
                    rejected.append((record, Rejection("item_id_gap", str(exc))))
        changed = []
        for item, outcome in outcomes:
            self.counts[outcome] += 1
            if outcome != "unchanged":
                changed.append(item)
                log.info("item %d %s in the catalogue: %r", item.item_id, outcome, item.title)
        if rejected:
            self.counts["rejected"] += len(rejected)
        return changed, rejected

    def _dead_letter(self, rejected: list[tuple[Any, Rejection]]) -> None:
        if not rejected:
            return
        producer = self._producer
        assert producer is not None
        letters = DeadLetters(producer, self.kafka.items_dlq_topic)
        futures = []
        for record, rejection in rejected:
            log.info(
                "item record %s:%d:%d rejected: %s", record.topic, record.partition, record.offset, rejection.reason
            )
            futures.append(
                letters.send(
                    record.value,
                    rejection,
                    key=record.key,
                    source=Source(record.topic, record.partition, record.offset),
                    headers=list(record.headers or ()),
                )
            )
        producer.flush(timeout=self.send_timeout_s)
        for future in futures:
            if not future.succeeded():
                raise BrokerUnavailable(f"a dead letter was not acknowledged: {future.exception!r}")
