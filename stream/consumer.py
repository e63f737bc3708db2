"""The stream consumer: click events -> SQL -> the active student -> FAISS -> recommendations.

Delivery guarantee: **at-least-once delivery, exactly-once effect in SQL** (as Quix Streams
and Kafka Connect sinks do it: commit offsets after the database write, idempotent sink).
For each batch returned by ``poll`` (at most ``KafkaSettings.max_poll_records``):

1. decode every record (``stream.events``); invalid ones are set aside with their reason;
2. ONE SQL transaction (``stream.batch.apply_batch``): ``append_events`` (idempotent by
   ``event_id``), the touched users' sequences re-encoded by the active student in one
   forward pass, one FAISS search with each user's seen items excluded, the top K
   (``ServeConfig.top_k``) written to ``recommendations`` with the model version and the
   triggering event; then COMMIT;
3. dead letters (original bytes + reason, ``stream.dlq``) and the recommendations
   (``stream.recommendations``) are sent;
4. the batch's Kafka offsets are committed once ALL those sends are acknowledged by the
   broker, in batch order (``stream.clients``): meanwhile the loop already polls and applies
   the next batches (at most ``max_in_flight`` wait), so acknowledgements cost no round trip
   on the hot path. Commits go out at most every ``commit_interval_ms``, asynchronously (a lost
   one, or a crash before one, only means a redelivery), and synchronously on shutdown.

Poison pills: a record batch the client cannot decode (a codec without its library, a corrupt
payload, a failed CRC) is fetched again up to ``poison_attempts`` times with backoff, then
skipped: one dead letter with its raw bytes, offsets and reason, a ``skipped_records`` row in
the batch's transaction, a log line and the ``skipped_*`` metrics (``stream.poison``). The
partition goes on with the next offsets. A record that is not a valid event is step 1's.

A crash anywhere before step 4 redelivers the batch: its events are duplicates (no SQL
change), the recommendations they triggered are read back and published again (flagged
``replayed``), rejected records are dead-lettered again. So SQL holds every event exactly
once, and both output topics are at-least-once. Offsets are never committed for a batch
whose transaction failed.

Failures: the database unavailable (connection errors, locks timing out) -> the batch is
rolled back, the consumer seeks back to its first offsets and retries after a backoff, never
skipping it. The broker unreachable (noticed by a TCP probe while polls come back empty, or
a Kafka error on send/commit) -> clients are closed, and the consumer waits with backoff
until the broker answers, re-creates the topics (idempotent; an in-memory broker loses them
on restart) and joins the group again with fresh clients, resuming from the committed
offsets (or the earliest ones when the broker lost them; re-applying is harmless).

Model versions: the active student comes from ``store.active.ActiveModel``. By default a
background thread asks the registry every ``model_check_s`` and loads a newly promoted
version completely off the hot path; the loop takes the loaded version once per batch, so a
swap happens between batches, never inside one. Without an active student, events are still
stored (recommendations are skipped; logged once). ``stop()`` (the CLI calls it on
SIGTERM/SIGINT) lets the current batch finish, commit, then closes the clients.

New items: with ``follow_items`` a background thread (``stream.item_feed``) follows the items
topic, stores new items in SQL (so clicks on them are accepted) and serves them from their
text through the active student's text map, with the LM at ``lm_checkpoint``.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka.errors import KafkaError
from sqlalchemy.orm import Session, sessionmaker

from core.index.threads import serving_threads
from core.settings import KafkaSettings, ServeConfig
from core.text.live import TextEncoder
from store.active import ActiveModel
from store.versions import LoadedVersion
from stream.batch import Applied, Catalogue, apply_batch, decode_batch, now_ms, skip_rejection
from stream.clients import Backoff, BrokerUnavailable, Clients, InFlight, Polled, next_offsets
from stream.fetch_wait import FetchWait
from stream.item_feed import ItemFeed
from stream.metrics import ConsumerMetrics
from stream.model_watch import ModelWatcher
from stream.options import ConsumerOptions, is_transient_db_error
from stream.poison import PoisonBatch, PoisonPolicy, PoisonRetry

log = logging.getLogger(__name__)


class StreamConsumer:
    """One member of the consumer group; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        serve: ServeConfig,
        sessions: sessionmaker[Session],
        active: ActiveModel,
        *,
        sequence_length: int,
        options: ConsumerOptions = ConsumerOptions(),
        metrics: ConsumerMetrics | None = None,
        lm_checkpoint: str | Path | None = None,
    ) -> None:
        """``lm_checkpoint``: the LM that reads new items' text (``TeacherConfig.checkpoint``;
        None: the bundled all-MiniLM-L6-v2)."""
        self.kafka = kafka
        self.serve = serve
        self.sessions = sessions
        self.active = active
        self.sequence_length = sequence_length
        self.options = options
        self.metrics = metrics or ConsumerMetrics()
        self.catalogue = Catalogue(sessions)
        self.item_feed = (
            ItemFeed(
                kafka,
                sessions,
                active,
                TextEncoder(lm_checkpoint),
                read_sessions=active.sessions,
                poll_timeout_ms=options.poll_timeout_ms,
                probe_every_s=options.probe_every_s,
                backoff_initial_s=options.backoff_initial_s,
                backoff_max_s=options.backoff_max_s,
                send_timeout_s=options.send_timeout_s,
                sync_every_s=options.model_check_s,
                poison_attempts=options.poison_attempts,
            )
            if options.follow_items
            else None
        )
        self._stop = threading.Event()
        self._clients: Clients | None = None
        self._db_backoff = Backoff(options.backoff_initial_s, options.backoff_max_s)
        self._broker_backoff = Backoff(options.backoff_initial_s, options.backoff_max_s)
        self._poison_backoff = Backoff(options.backoff_initial_s, options.backoff_max_s)
        self.poison = PoisonPolicy(options.poison_attempts)
        """Decoding failures per batch; outlives reconnects, so a skip is never postponed by them."""
        self._probed_at = time.monotonic()
        self._warned_no_model = False
        self._was_connected = False
        self.on_batch: Callable[[ConsumerMetrics], None] | None = None
        """Called after every committed batch (benchmarks and tests watch progress with it)."""

    # --- lifecycle ---------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the current batch, commit and close (thread/signal safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def assignment(self) -> set[int]:
        """The events-topic partitions this member owns right now (empty while disconnected)."""
        clients = self._clients
        try:
            return clients.assignment() if clients is not None else set()
        except Exception:  # noqa: BLE001 - read from another thread while reconnecting
            return set()

    def run(self) -> ConsumerMetrics:
        watcher = (
            ModelWatcher(self.active, self.options.model_check_s) if self.options.background_model_loading else None
        )
        serving_threads(self.options.threads)
        self._current_model(check=True)  # load the active version (if any) before the first batch
        if self.options.freeze_gc:
            gc.collect()
            gc.freeze()
        if watcher is not None:
            watcher.start()
        if self.item_feed is not None:
            self.item_feed.start()
        try:
            while not self._stop.is_set():
                if self._clients is None and not self._connect():
                    continue
                try:
                    self._step()
                except (KafkaError, BrokerUnavailable) as exc:
                    log.warning("broker problem (%s); reconnecting", exc)
                    self.metrics.broker_outages += 1
                    self._disconnect(final_commit=False)
        finally:
            if watcher is not None:
                watcher.stop()
            if self.item_feed is not None:
                self.item_feed.stop()
            self._disconnect(final_commit=True)
            m = self.metrics
            log.info(
                "consumer stopped: %d batches, %d events (%d new, %d duplicates, %d rejected); "
                "%d undecodable batches skipped (%d offsets)",
                m.batches,
                m.records,
                m.inserted,
                m.duplicates,
                m.rejected,
                m.skipped_batches,
                m.skipped_offsets,
            )
        return self.metrics

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- clients ---------------------------------------------------------------------------
    def _connect(self) -> bool:
        """Fresh clients (topics ensured first); False, after a backoff, while the broker is away."""
        try:
            self._clients = Clients(
                self.kafka,
                self.options.client_id,
                self.options.send_timeout_s,
                FetchWait(self.kafka, self.options.fetch_max_wait_ms),
                commit_interval_s=self.options.commit_interval_ms / 1000,
                poison=self.poison,
            )
        except (KafkaError, BrokerUnavailable, OSError) as exc:
            delay = self._broker_backoff.next()
            log.warning("broker unavailable (%s); retrying in %.1fs", exc, delay)
            self._sleep(delay)
            return False
        if self._was_connected:
            self.metrics.broker_recoveries += 1
            log.info("reconnected to %s; resuming from the committed offsets", self.kafka.bootstrap_servers)
        else:
            log.info(
                "consumer joining group %s on %s (topic %s)",
                self.kafka.consumer_group,
                self.kafka.bootstrap_servers,
                self.kafka.events_topic,
            )
        self._was_connected = True
        self._broker_backoff.reset()
        self._probed_at = time.monotonic()
        return True

    def _disconnect(self, final_commit: bool) -> None:
        clients, self._clients = self._clients, None
        if clients is not None:
            self._settled(clients.close(final_commit, self.options.send_timeout_s))

    def _probe(self, clients: Clients) -> None:
        if time.monotonic() - self._probed_at < self.options.probe_every_s:
            return
        self._probed_at = time.monotonic()
        if not clients.reachable():
            raise BrokerUnavailable(f"{self.kafka.bootstrap_servers} stopped accepting connections")

    # --- one batch -------------------------------------------------------------------------
    def _current_model(self, check: bool = False) -> LoadedVersion | None:
        """The version for the next batch: the one in hand when a watcher thread loads new ones,
        else ``ActiveModel.current()`` (which asks the registry at most every ``check_every``)."""
        if self.options.background_model_loading and not check:
            return self.active.loaded
        try:
            return self.active.current()
        except Exception as exc:  # noqa: BLE001 - serving goes on with the model in hand
            log.warning("could not check the active model: %s", exc)
            return self.active.loaded

    def _step(self) -> None:
        clients = self._clients
        assert clients is not None
        started = time.perf_counter()
        try:
            polled = clients.poll(self.options.poll_timeout_ms)
        except PoisonRetry:  # logged where it was decoded
            self.metrics.poison_retries = self.poison.retries
            self._sleep(self._poison_backoff.next())
            return
        self._poison_backoff.reset()
        waited = time.perf_counter() - started
        if not polled:
            self._settled(clients.settle(wait=False, timeout_s=self.options.send_timeout_s))
            self._probe(clients)
            return
        self.metrics.add_stage("poll", waited)
        begun = time.perf_counter()
        applied = self._process(clients, polled)
        if applied is not None:
            self.metrics.batch_done(
                begun,
                time.perf_counter(),
                sum(map(len, polled.values())),
                backlog=waited < 0.005,
                version=applied.model_version,
            )
            if self.on_batch is not None:
                self.on_batch(self.metrics)
        self._probed_at = time.monotonic()

    def _process(self, clients: Clients, polled: Polled) -> Applied | None:
        """Apply, publish and commit one batch; None when it must be retried (DB unavailable)."""
        records = [record for batch in polled.values() for record in batch]
        skipped = [record for record in records if isinstance(record, PoisonBatch)]
        if skipped:
            records = [record for record in records if not isinstance(record, PoisonBatch)]
        consumed = now_ms()
        model = self._current_model()
        if model is None and not self._warned_no_model:
            log.info("no active student yet: events are stored, recommendations skipped")
            self._warned_no_model = True
        try:
            with self.metrics.stage("decode"):
                decoded = decode_batch(records, self.catalogue, self.kafka.max_event_bytes)
            applied = apply_batch(
                self.sessions,
                decoded.valid,
                model,
                top_k=self.serve.top_k,
                sequence_length=self.sequence_length,
                consumed_ms=consumed,
                metrics=self.metrics,
                skipped=skipped,
            )
        except Exception as exc:
            if not is_transient_db_error(exc):
                raise
            self._retry_later(clients, polled, exc)
            return None
        self._db_backoff.reset()
        with self.metrics.stage("publish"):
            served = {message.user_id for message in applied.messages}
            stamps = [record.timestamp for record, event in decoded.valid if event.user_id in served]
            rejected = decoded.rejected + [(batch, skip_rejection(batch)) for batch in skipped]
            clients.publish(rejected, applied.messages, next_offsets(polled), payload=stamps)
        with self.metrics.stage("commit"):
            wait = len(clients.in_flight) > self.options.max_in_flight
            self._settled(clients.settle(wait, self.options.send_timeout_s))
        self.metrics.count_batch(len(records), decoded, applied, skipped, self.poison.retries)
        return applied

    def _settled(self, batches: list[InFlight]) -> None:
        """Latencies of the events whose recommendations were just acknowledged."""
        for batch in batches:
            acked = batch.acked_ms or now_ms()
            self.metrics.latencies_ms.extend(acked - stamp for stamp in batch.payload or () if stamp is not None)
        if batches:
            self.metrics.last_settled_at = time.perf_counter()

    def _retry_later(self, clients: Clients, polled: Polled, exc: BaseException) -> None:
        delay = self._db_backoff.next()
        self.metrics.batch_retries += 1
        log.warning(
            "database unavailable (%s: %s); retrying the batch of %d records in %.1fs",
            type(exc).__name__,
            str(exc).splitlines()[0][:200],
            sum(map(len, polled.values())),
            delay,
        )
        clients.seek_back(polled)
        self._sleep(delay)
