"""What an idle consumer costs: CPU of one consumer and the embedded broker, per fetch wait.

    .venv/bin/python -m bench.idle                  # adaptive (the default), 5, 100 and 500 ms
    .venv/bin/python -m bench.idle --seconds 30 --wait 0 --wait 20

One ``StreamConsumer`` (no active model, an empty SQLite store) joins the group on the embedded
broker and then sits idle for ``--seconds``; the table gives the CPU time each process used in
that window as a percentage of one core (``/proc``, Linux). ``--wait 0`` is the default
adaptive wait of ``stream.fetch_wait``. Prints a table and writes bench/results/idle.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from core.settings import KafkaSettings, ServeConfig
from store.active import ActiveModel
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade
from stream.broker import EmbeddedBroker, free_port
from stream.consumer import StreamConsumer
from stream.fetch_wait import EMBEDDED_BUSY_MS, EMBEDDED_IDLE_MS
from stream.options import ConsumerOptions

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def measure(wait_ms: int | None, seconds: float) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="kdrec-bench-idle-") as folder,
        EmbeddedBroker(KafkaSettings(), port=free_port()) as broker,
    ):
        engine = create_engine_for(f"sqlite:///{folder}/idle.db")
        upgrade(engine)
        active = ActiveModel(make_sessionmaker(engine, read_only=True), ServeConfig(), check_every=0.0)
        consumer = StreamConsumer(
            broker.settings,
            ServeConfig(),
            make_sessionmaker(engine),
            active,
            sequence_length=200,
            options=ConsumerOptions(fetch_max_wait_ms=wait_ms),
        )
        thread = threading.Thread(target=consumer.run, name="idle-consumer")
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not consumer.assignment():
                if time.monotonic() > deadline:
                    raise RuntimeError("the consumer did not join the group within 60 s")
                time.sleep(0.1)
            time.sleep(2.0)  # past the adaptive wait's idle switch
            pid = broker.pid
            assert pid is not None, "the broker stopped"
            broker0, own0, started = cpu_seconds(pid), own_cpu_seconds(), time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            broker_pct = 100 * (cpu_seconds(pid) - broker0) / elapsed
            consumer_pct = 100 * (own_cpu_seconds() - own0) / elapsed
        finally:
            consumer.stop()
            thread.join(30)
            engine.dispose()
    return {
        "consumer_pct": round(consumer_pct, 1),
        "broker_pct": round(broker_pct, 1),
        "total_pct": round(consumer_pct + broker_pct, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--wait", type=int, action="append", help="fetch wait in ms (repeatable; 0: the default adaptive wait)"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    waits = args.wait or [0, 5, 100, 500]
    rows = []
    for wait in waits:
        label = f"adaptive ({EMBEDDED_BUSY_MS} busy / {EMBEDDED_IDLE_MS} idle)" if wait == 0 else f"{wait} ms"
        rows.append({"fetch_wait": label, **measure(wait or None, args.seconds)})
    lines = [
        "# Idle consumer cost on the embedded broker",
        "",
        f"`python -m bench.idle`: one consumer, no traffic, {args.seconds:g} s after joining; CPU as % of "
        f"one core ({os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.2f} at the end).",
        "",
        "| fetch wait | consumer | broker | total |",
        "|---|---:|---:|---:|",
        *(f"| {r['fetch_wait']} | {r['consumer_pct']} | {r['broker_pct']} | {r['total_pct']} |" for r in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "idle.md").write_text(text)
    (RESULTS / "idle.json").write_text(json.dumps({"seconds": args.seconds, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
