"""Tables, verdict and result files of the streaming benchmark (``bench.stream``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.settings import StudentConfig

STAGE_COLUMNS = ("poll", "decode", "sql", "encode", "search", "write", "publish", "commit")
OVERHEAD = ("poll", "decode", "publish", "commit")
STORE = ("sql", "write")
MODEL = ("encode", "search")


def tables(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | scenario | run | events | batches | events/s | latency p50 / p95 / p99 (ms), "
        "row committed | same, acked on topic |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r["mode"] == "throughput":
            lines.append(
                f"| {r['backend']} | {r['scenario']} | {r['mode']} | {r['events']:,} | {r['batches']:,} | "
                f"**{r['events_per_s']:,}** | | |"
            )
        else:
            c, a = r["latency_committed_ms"], r["latency_acked_ms"]
            runs = r.get("p99_runs", [c["p99"]])
            every = f" (p99 of the {len(runs)} runs: {' / '.join(map(str, runs))})" if len(runs) > 1 else ""
            lines.append(
                f"| {r['backend']} | {r['scenario']} | {r['mode']} | {r['events']:,} | {r['batches']:,} | | "
                f"{c['p50']} / {c['p95']} / **{c['p99']}**{every} | {a['p50']} / {a['p95']} / {a['p99']} |"
            )
    lines += [
        "",
        "Where the latency goes (p50 / p95 / p99, ms): delivery = event published -> batch polled by "
        "the consumer; processing = batch polled -> SQL committed (includes waiting behind the "
        "previous batch); batch = one batch's processing time in the consumer:",
        "",
        "| backend | scenario | events per batch | delivery | processing | batch |",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows:
        if r["mode"] != "throughput":
            d, p, b = r["delivery_ms"], r["processing_ms"], r["batch_ms"]
            lines.append(
                f"| {r['backend']} | {r['scenario']} | {r['events_per_batch']} | "
                f"{d['p50']} / {d['p95']} / {d['p99']} | {p['p50']} / {p['p95']} / {p['p99']} | "
                f"{b['p50']} / {b['p95']} / {b['p99']} |"
            )
    lines += [
        "",
        "The same latency by quarter of each run (events ordered by publish time). The embedded broker "
        "(Tansu, in memory) spends time in proportion to the record batches already stored on a topic for every "
        "fetch that returns records, so its share grows as the topic fills "
        "(`python -m bench.stream_transport` shows it without kdrec):",
        "",
        "| backend | scenario | quarter | records on the topic by its end | row committed p50 / p95 / p99 | "
        "delivery p50 / p95 / p99 | processing p50 / p95 / p99 |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        for q in r.get("quarters", ()):
            c, d, p = q["committed_ms"], q["delivery_ms"], q["processing_ms"]
            lines.append(
                f"| {r['backend']} | {r['scenario']} | {q['quarter']} | {q['topic_records_at_end']:,} | "
                f"{c['p50']} / {c['p95']} / **{c['p99']}** | {d['p50']} / {d['p95']} / {d['p99']} | "
                f"{p['p50']} / {p['p95']} / {p['p99']} |"
            )
    lines += [
        "",
        "Per-stage time, microseconds per event (summed over the run, divided by its events):",
        "",
        "| backend | scenario | run | " + " | ".join(STAGE_COLUMNS) + " |",
        "|---|---|---|" + "---:|" * len(STAGE_COLUMNS),
    ]
    for r in rows:
        stages = r["stages_us_per_event"]
        lines.append(
            f"| {r['backend']} | {r['scenario']} | {r['mode']} | "
            + " | ".join(f"{stages[name]:,}" for name in STAGE_COLUMNS)
            + " |"
        )
    return "\n".join(lines)


def encode_flops(config: StudentConfig, length: int) -> float:
    """Multiply-adds x 2 of one session encoding over ``length`` positions (linear layers +
    attention): every layer but the last over all positions; the last one projects keys and
    values for all of them but attends and runs its feed-forward for the last position only
    (``Student.last_state``)."""
    d = config.hidden
    attention = 2 * 2 * length * d  # scores and weighted values, per query
    full = 2 * (3 * d * d + d * d + 2 * 4 * d * d) + attention  # per position
    last = length * 2 * 3 * d * d + attention + 2 * (d * d + 2 * 4 * d * d)
    return float(full * length * (config.num_layers - 1) + last)


TARGET_EVENTS_PER_S = 5_000
TARGET_P99_MS = 20.0


def verdict(rows: list[dict[str, Any]], student: StudentConfig, sequence_length: int) -> str:
    """The targets against the measurements, and what bounds the warm case."""
    lines = [
        f"Targets: >= {TARGET_EVENTS_PER_S:,} events/s per consumer process; p99 <= {TARGET_P99_MS:g} ms "
        "(row committed) at the fixed rate.",
        "",
    ]
    for r in rows:
        if r["mode"] == "throughput":
            ok = r["events_per_s"] >= TARGET_EVENTS_PER_S
            lines.append(
                f"* {r['backend']}, {r['scenario']}: {r['events_per_s']:,} events/s - "
                f"{'meets' if ok else 'BELOW'} the throughput target."
            )
        else:
            p99 = r["latency_committed_ms"]["p99"]
            ok = p99 <= TARGET_P99_MS
            lines.append(
                f"* {r['backend']}, {r['scenario']}: p99 {p99} ms at {r['mode'].split('@ ')[1]} - "
                f"{'meets' if ok else 'ABOVE'} the latency target."
            )
    length = min(sequence_length, student.max_len)
    flops = encode_flops(student, length)
    warm = [r for r in rows if r["scenario"] == "warm" and r["mode"] == "throughput"]
    if warm:
        us = max(r["stages_us_per_event"]["encode"] for r in warm)
        lines += [
            "",
            f"Warm encode bound: one forward pass of the student over {length} positions is "
            f"~{flops / 1e6:.0f} MFLOP, so {TARGET_EVENTS_PER_S:,} users/s need "
            f"~{flops * TARGET_EVENTS_PER_S / 1e9:.0f} GFLOP/s for the encoder alone; measured here "
            f"{us:,.0f} us per event (~{flops / us / 1e3:.1f} GFLOP/s on one shared thread), i.e. at most "
            f"{1e6 / us:,.0f} events/s when every event touches a different long-history user.",
        ]
    return "\n".join(lines)


def shares(rows: list[dict[str, Any]]) -> str:
    """Where a throughput run's time goes: Kafka and decoding, SQL, the model."""
    lines = [
        "",
        "Share of the consumer's time per throughput run: Kafka + decoding (poll, decode, publish, "
        "commit) / SQL (append, write + commit) / model (encode, search):",
        "",
    ]
    for r in rows:
        if r["mode"] != "throughput":
            continue
        stages = r["stages_us_per_event"]
        total = sum(stages.values()) or 1.0
        parts = [100 * sum(stages[name] for name in group) / total for group in (OVERHEAD, STORE, MODEL)]
        lines.append(
            f"* {r['backend']}, {r['scenario']}: {parts[0]:.0f}% / {parts[1]:.0f}% / {parts[2]:.0f}% "
            f"of {total:,.0f} us per event"
        )
    return "\n".join(lines)


def write_results(
    folder: Path, config: dict[str, Any], machine: dict[str, Any], rows: list[dict[str, Any]], student: StudentConfig
) -> str:
    """Write stream.json and stream.md into ``folder``; returns the markdown body."""
    body = f"{tables(rows)}\n\n## Verdict\n\n{verdict(rows, student, config['sequence_length'])}\n{shares(rows)}\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stream.json").write_text(
        json.dumps({"config": config, "machine": machine, "rows": rows}, indent=2) + "\n"
    )
    (folder / "stream.md").write_text(
        f"# Streaming benchmark\n\n`python -m bench.stream` on {config['dataset']} ({config['users']:,} users, "
        f"{config['items']:,} items): one consumer process, the embedded broker over TCP (a fresh one per "
        f"database), {config['student']}, "
        f"top-{config['top_k']} from a {config['index']} FAISS index, batches of up to "
        f"{config['max_poll_records']} records, {config['partitions']} partitions, at most "
        f"{config['max_in_flight']} batches awaiting acks, offsets committed at most every "
        f"{config.get('commit_interval_ms', 0)} ms, fetch_max_wait_ms {config['fetch_max_wait_ms']} (see "
        f"stream/fetch_wait.py). Throughput runs: "
        f"{config['events']:,} (cold) and {config['warm_events']:,} (warm) pre-published events. Latency runs: "
        f"{config['latency_seconds']:g} s at {config['rate']:g} events/s from a separate producer process, first "
        f"{config['warmup_events']} events left out; {config.get('latency_repeats', 1)} runs per scenario on new "
        f"events, the one with the median p99 shown.\n"
        f"Machine: {machine['cpus']} CPUs (1-min load average {machine['load_average_1m']} at the end, shared "
        f"with other work), Python {machine['python']}, torch {machine['torch']} "
        f"({machine['torch_threads']} thread).\n\n{body}"
    )
    return body
