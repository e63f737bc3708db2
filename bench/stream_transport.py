"""The transport floor under the streaming latency: publish -> poll with no work at all.

    .venv/bin/python -m bench.stream_transport                 # embedded broker, 500 events/s
    .venv/bin/python -m bench.stream_transport --fetch-max-wait-ms 1 --fetch-max-wait-ms 5

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
from stream.metrics import percentile

log = logging.getLogger("bench.stream_transport")
RESULTS = Path(__file__).resolve().parent / "results"


def probe(kafka: KafkaSettings, rate: float, seconds: float, fetch_wait_ms: int, warmup: int) -> dict[str, Any]:
    count = int(rate * seconds)
    consumer = KafkaConsumer(kafka.events_topic, **kafka.client_options(), group_id=kafka.consumer_group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=fetch_wait_ms, max_poll_records=kafka.max_poll_records,
                             session_timeout_ms=kafka.session_timeout_ms,
                             heartbeat_interval_ms=kafka.heartbeat_interval_ms)
    delays: list[float] = []
    polls = 0
    try:
        started = time.monotonic()
        while not consumer.assignment() and time.monotonic() - started < 60:
            consumer.poll(timeout_ms=100)
        events = [ClickEvent(event_id=f"t{i}", user_id=1 + i % 1000, item_id=1 + i % 3000, ts=10**13 + i).model_dump()
                  for i in range(count)]
        spec = {"kafka": json.loads(kafka.model_dump_json()), "rate": rate, "events": events}
        process = subprocess.Popen([sys.executable, "-m", "bench.stream", "--produce"], stdin=subprocess.PIPE,
                                   env={**os.environ, "OMP_NUM_THREADS": "1"})
        feeder = threading.Thread(target=process.communicate, args=(json.dumps(spec).encode(),), daemon=True)
        feeder.start()
        deadline = time.monotonic() + seconds + 60
        while len(delays) < count and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=100)
            now = time.time() * 1000
            polls += 1 if batches else 0
            delays.extend(now - record.timestamp for records in batches.values() for record in records)
        feeder.join(30)
    finally:
        consumer.close()
    timed = delays[warmup:]
    return {"fetch_max_wait_ms": fetch_wait_ms, "rate": rate, "events": len(delays), "polls": polls,
            **{f"p{q}": round(percentile(timed, q), 1) for q in (50, 95, 99)},
            "max": round(max(timed, default=float("nan")), 1)}


def render(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = "\n".join(f"| {r['fetch_max_wait_ms']} | {r['rate']:g} | {r['events']:,} | {r['polls']:,} | "
                      f"{r['p50']} / {r['p95']} / **{r['p99']}** | {r['max']} |" for r in rows)
    load = os.getloadavg()[0]
    return ("# Transport floor: publish -> poll, no processing\n\n"
            f"`python -m bench.stream_transport`: the embedded broker over TCP, a producer process at a "
            f"fixed rate for {seconds:g} s, a bare consumer that only polls. Machine: {os.cpu_count()} CPUs "
            f"(1-min load average {load:.2f} at the end), Python {platform.python_version()}.\n\n"
            "| fetch_max_wait_ms | events/s | events | polls with records | delivery p50 / p95 / p99 (ms) | max |\n"
            "|---:|---:|---:|---:|---|---:|\n" + lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=int, default=250, help="first events left out")
    parser.add_argument("--fetch-max-wait-ms", type=int, action="append",
                        help="repeatable (default: 5, the adaptive wait's value while records flow)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = []
    with EmbeddedBroker(KafkaSettings(), port=free_port()) as broker:
        for wait in args.fetch_max_wait_ms or [5]:
            rows.append(probe(fresh_topics(broker), args.rate, args.seconds, wait, args.warmup))
            log.info("%s", rows[-1])
    text = render(rows, args.seconds)
    write(RESULTS / "stream-transport", text, {"rows": rows, "seconds": args.seconds})
    print(text)


if __name__ == "__main__":
    main()
