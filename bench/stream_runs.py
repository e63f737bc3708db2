"""The two kinds of run of the streaming benchmark: throughput (pre-published events) and
latency (a producer process at a fixed rate), each with one consumer in this process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench.stream_report import STAGE_COLUMNS
from core.data.dataset import Dataset
from core.settings import KafkaSettings, ServeConfig
from store.active import ActiveModel
from stream.broker import EmbeddedBroker
from stream.consumer import StreamConsumer
from stream.events import ClickEvent
from stream.metrics import ConsumerMetrics, percentile
from stream.options import ConsumerOptions
from stream.producer import ClickProducer
from stream.recommendations import RecommendationMessage
from stream.topics import ensure_topics

log = logging.getLogger("bench.stream")


@dataclass
class Setup:
    data: Dataset
    sessions: Any
    active: ActiveModel
    broker: EmbeddedBroker
    serve: ServeConfig
    sequence_length: int
    args: argparse.Namespace


def fresh_topics(broker: EmbeddedBroker) -> KafkaSettings:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    kafka = broker.settings.model_copy(
        update={
            "events_topic": f"{prefix}.events",
            "dlq_topic": f"{prefix}.dlq",
            "recommendations_topic": f"{prefix}.recs",
            "control_topic": f"{prefix}.control",
            "consumer_group": f"{prefix}-group",
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 1000,
        }
    )
    ensure_topics(kafka)
    return kafka


def run_consumer(
    setup: Setup,
    kafka: KafkaSettings,
    records: int,
    *,
    producer: dict[str, Any] | None = None,
    timeout_s: float = 600.0,
) -> ConsumerMetrics:
    """One consumer until ``records`` records are processed; ``producer``: a fixed-rate
    producer process started once the consumer owns every partition."""
    options = ConsumerOptions(
        poll_timeout_ms=100,
        model_check_s=5.0,
        max_in_flight=setup.args.max_in_flight,
        fetch_max_wait_ms=setup.args.fetch_max_wait_ms,
        threads=setup.args.threads,
    )
    consumer = StreamConsumer(
        kafka, setup.serve, setup.sessions, setup.active, sequence_length=setup.sequence_length, options=options
    )
    consumer.on_batch = lambda metrics: consumer.stop() if metrics.records >= records else None
    failure: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)
            consumer.stop()

    thread = threading.Thread(target=run, name="bench-consumer")
    started = time.monotonic()
    thread.start()
    process = None
    try:
        while len(consumer.assignment()) < kafka.partitions and thread.is_alive():
            if time.monotonic() - started > 60:
                raise RuntimeError("the consumer did not join the group within 60 s")
            time.sleep(0.05)
        log.info("consumer joined in %.1fs", time.monotonic() - started)
        if producer is not None:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.stream", "--produce"],
                stdin=subprocess.PIPE,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            process.communicate(json.dumps(producer).encode())
            if process.returncode != 0:
                raise RuntimeError(f"the producer process failed (status {process.returncode})")
        thread.join(timeout_s)
        if thread.is_alive():
            raise RuntimeError(f"only {consumer.metrics.records} of {records} records in {timeout_s:.0f} s")
    finally:
        consumer.stop()
        thread.join(30)
        if process is not None and process.poll() is None:
            process.kill()
    if failure:
        raise failure[0]
    return consumer.metrics


def read_recommendations(kafka: KafkaSettings, expected: int, timeout_s: float = 60.0) -> list[RecommendationMessage]:
    consumer = KafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    try:
        topic = kafka.recommendations_topic
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[RecommendationMessage] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                out.extend(RecommendationMessage.from_json(r.value) for r in batch)
        return out
    finally:
        consumer.close()


def by_quarter(timed: list[RecommendationMessage], published: int, quantiles: Any) -> list[dict[str, Any]]:
    """Latency per quarter of the run, by publish time: on the embedded broker a fetch costs time
    in proportion to the records already on the topic, so the tail grows as the run goes on."""
    ordered = sorted(timed, key=lambda m: m.published_ms or 0)
    size = max(len(ordered) // 4, 1)
    out = []
    for quarter in range(4):
        part = ordered[quarter * size : (quarter + 1) * size if quarter < 3 else len(ordered)]
        out.append(
            {
                "quarter": quarter + 1,
                "topic_records_at_end": round(published * (quarter + 1) / 4),
                "committed_ms": quantiles([m.recommended_ms - m.published_ms for m in part]),
                "delivery_ms": quantiles([m.consumed_ms - m.published_ms for m in part]),
                "processing_ms": quantiles([m.recommended_ms - m.consumed_ms for m in part]),
            }
        )
    return out


def stage_row(metrics: ConsumerMetrics) -> dict[str, float]:
    return {
        name: round(metrics.stage_seconds.get(name, 0.0) * 1e6 / max(metrics.records, 1), 1) for name in STAGE_COLUMNS
    }


def throughput(setup: Setup, scenario: str, events: list[ClickEvent]) -> dict[str, Any]:
    kafka = fresh_topics(setup.broker)
    started = time.perf_counter()
    with ClickProducer(kafka) as producer:
        for event in events:
            producer.send(event)
    log.info("%s: published %d events in %.1fs", scenario, len(events), time.perf_counter() - started)
    metrics = run_consumer(setup, kafka, len(events))
    seconds = (metrics.last_settled_at or metrics.last_batch_at) - metrics.first_batch_at
    return {
        "scenario": scenario,
        "mode": "throughput",
        "events": metrics.records,
        "inserted": metrics.inserted,
        "batches": metrics.batches,
        "recommendations": metrics.recommendations,
        "seconds": round(seconds, 2),
        "events_per_s": round(metrics.records / seconds),
        "stages_us_per_event": stage_row(metrics),
    }


def latency(setup: Setup, scenario: str, events: list[ClickEvent], rate: float, warmup: int) -> dict[str, Any]:
    kafka = fresh_topics(setup.broker)
    spec = {"kafka": json.loads(kafka.model_dump_json()), "rate": rate, "events": [e.model_dump() for e in events]}
    metrics = run_consumer(setup, kafka, len(events), producer=spec)
    messages = read_recommendations(kafka, metrics.recommendations)
    first_ts = sorted(e.ts for e in events)[min(warmup, len(events) - 1)]
    timed = [m for m in messages if not m.replayed and (m.event_ts or 0) >= first_ts and m.published_ms is not None]
    committed = [m.recommended_ms - m.published_ms for m in timed]
    delivery = [m.consumed_ms - m.published_ms for m in timed]  # producer -> broker -> consumer poll
    processing = [m.recommended_ms - m.consumed_ms for m in timed]  # poll returned -> SQL committed
    acked = list(metrics.latencies_ms)[warmup:]
    batch_ms = [1000 * (ended - started) for started, ended, _, _ in metrics.batch_log]

    def quantiles(values: list[float]) -> dict[str, float]:
        return {f"p{q}": round(percentile(values, q), 1) for q in (50, 95, 99)}

    summary, summary_acked = quantiles(committed), quantiles(acked)
    return {
        "scenario": scenario,
        "mode": f"latency @ {rate:g}/s",
        "events": metrics.records,
        "inserted": metrics.inserted,
        "batches": metrics.batches,
        "recommendations": metrics.recommendations,
        "events_per_batch": round(metrics.records / max(metrics.batches, 1), 1),
        "latency_committed_ms": summary,
        "latency_committed_count": len(committed),
        "latency_acked_ms": summary_acked,
        "latency_acked_count": len(acked),
        "max_acked_ms": round(max(acked, default=float("nan")), 1),
        "delivery_ms": quantiles(delivery),
        "processing_ms": quantiles(processing),
        "batch_ms": quantiles(batch_ms),
        "quarters": by_quarter(timed, len(events), quantiles),
        "stages_us_per_event": stage_row(metrics),
    }
