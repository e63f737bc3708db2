"""The transport floor under the streaming latency: publish -> poll with no work at all.

    .venv/bin/python -m bench.stream_transport                 # embedded broker, 500 events/s
    .venv/bin/python -m bench.stream_transport --fetch-max-wait-ms 5 --fetch-max-wait-ms 10
    .venv/bin/python -m bench.stream_transport --prefill 0 --prefill 20000   # a topic that holds records

The same producer process as ``bench.stream``'s latency runs (``--produce``: kdrec's
``ClickProducer``, idempotent, acks=all, linger 0) publishes at a fixed rate onto a fresh
topic; a bare kafka-python consumer in this process, in a consumer group like kdrec's,
polls and does nothing else. Delivery = poll returned - the record's Kafka timestamp (set by
the producer when it sent the event). Whatever tail this shows, the real consumer cannot beat:
it is what the broker, the client library and the machine's scheduler cost. Writes
bench/results/stream-transport.md and .json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer

from bench.quality_report import write
from bench.stream_runs import fresh_topics
from core.settings import KafkaSettings
from stream.broker import EmbeddedBroker, free_port
from stream.events import ClickEvent
from stream.fetch_wait import EMBEDDED_BUSY_MS
from stream.metrics import percentile

log = logging.getLogger("bench.stream_transport")
RESULTS = Path(__file__).resolve().parent / "results"
PREFILL_RATE = 2000.0


def publish(kafka: KafkaSettings, events: list[dict[str, Any]], rate: float) -> subprocess.Popen:
    """``bench.stream``'s producer process, fed ``events`` to publish at ``rate`` per second."""
    spec = {"kafka": json.loads(kafka.model_dump_json()), "rate": rate, "events": events}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stream", "--produce"],
        stdin=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    threading.Thread(target=process.communicate, args=(json.dumps(spec).encode(),), daemon=True).start()
    return process


def click(prefix: str, i: int) -> dict[str, Any]:
    return ClickEvent(event_id=f"{prefix}{i}", user_id=1 + i % 1000, item_id=1 + i % 3000, ts=10**13 + i).model_dump()


def probe(
    kafka: KafkaSettings, rate: float, seconds: float, fetch_wait_ms: int, warmup: int, prefill: int = 0
) -> dict[str, Any]:
    """``prefill`` records are published at ``PREFILL_RATE`` (about one record per stored batch,
    as live traffic is) and consumed before the timed run, which then starts on a topic that
    already holds them."""
    count = int(rate * seconds)
    consumer = KafkaConsumer(
        kafka.events_topic,
        **kafka.client_options(),
        group_id=kafka.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
        max_poll_records=kafka.max_poll_records,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
    )
    delays: list[float] = []
    polls = 0
    try:
        started = time.monotonic()
        while not consumer.assignment() and time.monotonic() - started < 60:
            consumer.poll(timeout_ms=100)
        if prefill:
            filler, drained = publish(kafka, [click("p", i) for i in range(prefill)], PREFILL_RATE), 0
            while drained < prefill and time.monotonic() - started < 300:
                drained += sum(map(len, consumer.poll(timeout_ms=100).values()))
            filler.wait(30)
        process = publish(kafka, [click("t", i) for i in range(count)], rate)
        deadline = time.monotonic() + seconds + 60
        while len(delays) < count and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=100)
            now = time.time() * 1000
            polls += 1 if batches else 0
            delays.extend(now - record.timestamp for records in batches.values() for record in records)
        process.wait(30)
    finally:
        consumer.close()
    timed = delays[warmup:]
    size = max(len(timed) // 4, 1)
    quarters = [timed[i * size : (i + 1) * size if i < 3 else len(timed)] for i in range(4)]
    return {
        "fetch_max_wait_ms": fetch_wait_ms,
        "prefill": prefill,
        "rate": rate,
        "events": len(delays),
        "polls": polls,
        **{f"p{q}": round(percentile(timed, q), 1) for q in (50, 95, 99)},
        "max": round(max(timed, default=float("nan")), 1),
        "p99_by_quarter": [round(percentile(part, 99), 1) for part in quarters],
    }


def render(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = "\n".join(
        f"| {r['fetch_max_wait_ms']} | {r['prefill']:,} | {r['rate']:g} | {r['events']:,} | {r['polls']:,} | "
        f"{r['p50']} / {r['p95']} / **{r['p99']}** | {' / '.join(map(str, r['p99_by_quarter']))} | "
        f"{r['max']} |"
        for r in rows
    )
    load = os.getloadavg()[0]
    return (
        "# Transport floor: publish -> poll, no processing\n\n"
        "`python -m bench.stream_transport`: the embedded broker over TCP (a fresh one per row), a producer "
        f"process at a fixed rate for {seconds:g} s, a bare consumer that only polls. Machine: {os.cpu_count()} CPUs "
        f"(1-min load average {load:.2f} at the end), Python {platform.python_version()}.\n\n"
        "| fetch_max_wait_ms | records on the topic before | events/s | events | polls with records | "
        "delivery p50 / p95 / p99 (ms) | p99 by quarter of the run | max |\n"
        "|---:|---:|---:|---:|---:|---|---|---:|\n" + lines + "\n\nThe embedded broker (Tansu 0.6, in memory) "
        "spends time in proportion to the record batches already stored on a topic for every fetch that "
        "returns records (compare the rows with records on the topic before the run, published at "
        f"{PREFILL_RATE:,.0f}/s: about one record per batch, as live traffic stores them), so the tail grows "
        "with the run's length."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=250, help="first events left out")
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        action="append",
        help="repeatable (default: the adaptive wait's value while records flow)",
    )
    parser.add_argument(
        "--prefill",
        type=int,
        action="append",
        help="records on the topic before the timed run; repeatable (default: 0)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = []
    for prefill in args.prefill or [0]:
        for wait in args.fetch_max_wait_ms or [EMBEDDED_BUSY_MS]:
            with EmbeddedBroker(KafkaSettings(), port=free_port()) as broker:  # a fresh one per row
                rows.append(probe(fresh_topics(broker), args.rate, args.seconds, wait, args.warmup, prefill))
            log.info("%s", rows[-1])
    text = render(rows, args.seconds)
    write(RESULTS / "stream-transport", text, {"rows": rows, "seconds": args.seconds})
    print(text)


if __name__ == "__main__":
    main()
