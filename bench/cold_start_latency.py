"""New item -> first recommendation list containing it, on the embedded broker (bench.cold_start).

A fresh SQLite store holds the known items; the served student (trained on them, with its text
map) is the active version; a stream consumer runs in this process with its item feed, as
``kdrec consume`` does. Each probe user first clicks the held-out item's nearest known items by
text (cosine of the LM encodings). A session of an item's look-alikes does not always ask for
that item (the student predicts what comes next), and an item no list would contain has no
latency to time: so the probed items are the first ``count`` held-out items that such a session
ranks in its top ``ServeConfig.top_k`` offline, with every held-out item's text vector in the
index (``probe_items``; how many of all held-out items qualify is reported). Then every held-out
item up to the last probed one is published to the items topic, one at a time in id order (ids
are dense); for a probed item its probe user clicks again every ``PROBE_EVERY_MS``, and the
latency is from publishing to the creation of the first of that user's recommendation rows that
contains the item. Items not recommended within ``TIMEOUT_S`` are counted, not timed.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import select

from bench.cold_start_split import ColdSplit
from core.distill.text_map import TextMap
from core.models.base import SequenceModel
from core.settings import KafkaSettings, ServeConfig
from store.active import ActiveModel
from store.engine import create_engine_for, make_sessionmaker
from store.load import upsert_items
from store.migrate import upgrade
from store.models import Recommendation
from store.versions import new_artifact_folder, publish
from stream.broker import EmbeddedBroker
from stream.consumer import StreamConsumer
from stream.items import publish_items
from stream.net import free_port
from stream.options import ConsumerOptions
from stream.producer import ClickProducer

log = logging.getLogger("bench.cold_start")
PROBE_LEN = 5
PROBE_EVERY_MS = 50
TIMEOUT_S = 5.0
FIRST_PROBE_USER = 10_000_000
OPTIONS = ConsumerOptions(poll_timeout_ms=100, model_check_s=0.5, commit_interval_ms=100)


def probe_sessions(encodings: torch.Tensor, known: int, items: list[int]) -> dict[int, list[int]]:
    """Each item's ``PROBE_LEN`` nearest known items by the cosine of their text encodings."""
    unit = torch.nn.functional.normalize(encodings.float(), dim=1)
    similar = unit[items] @ unit[1 : known + 1].T
    return {item: (similar[row].topk(PROBE_LEN).indices + 1).tolist() for row, item in enumerate(items)}


@torch.no_grad()
def probe_ranks(student: SequenceModel, table: torch.Tensor, sessions_of: dict[int, list[int]]) -> dict[int, int]:
    """Each item's rank (0: first) among the unseen items of ``table`` for its probe session."""
    items = sorted(sessions_of)
    queries = student.eval().encode(student.prepare([sessions_of[i] for i in items])).float()
    scores = queries @ table.T
    scores[:, 0] = float("-inf")
    rows = torch.arange(len(items))
    for row, item in enumerate(items):
        scores[row, sessions_of[item]] = float("-inf")
    own = scores[rows, torch.as_tensor(items)]
    return dict(zip(items, (scores > own[:, None]).sum(1).tolist(), strict=True))


def measure_latency(
    student: SequenceModel,
    text_map: TextMap,
    split: ColdSplit,
    encodings: torch.Tensor,
    count: int,
    table: torch.Tensor,
) -> dict[str, Any]:
    """``table``: the student's rows, then every held-out item's text vector (the offline index)."""
    held_out = list(range(split.known + 1, split.num_items + 1))
    sessions_of = probe_sessions(encodings, split.known, held_out)
    ranks = probe_ranks(student, table, sessions_of)
    top_k = ServeConfig().top_k
    listed = [item for item in held_out if ranks[item] < top_k]
    probed = set(listed[:count])
    items = [item for item in held_out if item <= max(probed, default=split.known)]
    with tempfile.TemporaryDirectory(prefix="kdrec-cold-") as tmp:
        root = Path(tmp)
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", session_timeout_ms=3000)
        engine = create_engine_for(f"sqlite:///{root / 'kdrec.db'}")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        serve = ServeConfig()
        with sessions.begin() as session:
            upsert_items(session, [split.data.items[i] for i in range(1, split.known + 1)])
            folder = new_artifact_folder(root, "student", "cold")
            text_map.save(folder)
            publish(session, student, folder, metrics={}, config={}, serve=serve, promote=True)
        with EmbeddedBroker(kafka) as broker:
            kafka = broker.settings
            active = ActiveModel(sessions, serve, check_every=0.5)
            consumer = StreamConsumer(kafka, serve, sessions, active, sequence_length=200, options=OPTIONS)
            thread = threading.Thread(target=consumer.run, name="cold-start-consumer", daemon=True)
            thread.start()
            try:
                latencies, indexed = _probe(kafka, sessions, items, probed, sessions_of, split, active)
            finally:
                consumer.stop()
                thread.join(30)
        engine.dispose()
    found = [ms for ms in latencies if ms is not None]
    in_index = [ms for ms in indexed if ms is not None]
    result: dict[str, Any] = {
        "held_out": len(held_out),
        "listed_offline": len(listed),
        "top_k": top_k,
        "published": len(items),
        "items": len(probed),
        "found": len(found),
        "indexed": len(in_index),
        "indexed_p50_ms": float(np.percentile(in_index, 50)) if in_index else None,
        "indexed_p99_ms": float(np.percentile(in_index, 99)) if in_index else None,
        "indexed_ms": indexed,
        "timeout_s": TIMEOUT_S,
        "probe_len": PROBE_LEN,
        "probe_every_ms": PROBE_EVERY_MS,
        "latencies_ms": latencies,
    }
    if found:
        result |= {
            "p50_ms": float(np.percentile(found, 50)),
            "p99_ms": float(np.percentile(found, 99)),
            "max_ms": float(max(found)),
        }
    return result


def _probe(
    kafka: KafkaSettings,
    sessions: Any,
    items: list[int],
    probed: set[int],
    sessions_of: dict[int, list[int]],
    split: ColdSplit,
    active: ActiveModel,
) -> tuple[list[float | None], list[float | None]]:
    """Publish ``items`` in order; time the ``probed`` ones (the others only wait for the index)."""
    users = {item: FIRST_PROBE_USER + n for n, item in enumerate(sorted(probed))}
    with ClickProducer(kafka) as producer:
        for item in sorted(probed):  # each probe user's session, before any new item exists
            for known in sessions_of[item]:
                producer.publish_click(users[item], known)
        producer.flush(30)
        _wait_for_rows(sessions, users[max(probed)], 0.0, 60.0)  # the consumer has caught up
        latencies: list[float | None] = []
        indexed: list[float | None] = []
        for item in items:
            record = {"item_id": item, "title": split.data.items[item].title}
            record |= dict(split.data.items[item].fields)
            started = time.time()
            publish_items(kafka, [record])
            if item not in probed:
                _until_indexed(active, item, started + TIMEOUT_S)
                continue
            seen = _until_recommended(producer, sessions, users[item], item, sessions_of[item][-1], started, active)
            latencies.append(seen[0])
            indexed.append(seen[1])
            log.info("item %d: %s", item, "not recommended" if latencies[-1] is None else f"{latencies[-1]:.0f} ms")
    return latencies, indexed


def _until_recommended(
    producer: ClickProducer, sessions: Any, user: int, item: int, click: int, started: float, active: ActiveModel
) -> tuple[float | None, float | None]:
    """Milliseconds from publishing to the first list with the item, and to its entry in the
    serving index (None: not within the timeout)."""
    deadline, next_click, indexed = started + TIMEOUT_S, 0.0, None
    while time.time() < deadline:
        loaded = active.loaded
        if indexed is None and loaded is not None and item in loaded.text_items:
            indexed = (time.time() - started) * 1000
        if time.time() >= next_click:
            producer.publish_click(user, click)
            producer.flush(5)
            next_click = time.time() + PROBE_EVERY_MS / 1000
        with sessions() as session:
            rows = session.execute(
                select(Recommendation.items, Recommendation.created_at).where(Recommendation.user_id == user)
            ).all()
        hits = [created.timestamp() for ranked, created in rows if item in ranked and created.timestamp() >= started]
        if hits:
            return (min(hits) - started) * 1000, indexed
        time.sleep(0.005)
    return None, indexed


def _until_indexed(active: ActiveModel, item: int, deadline: float) -> None:
    while time.time() < deadline:
        loaded = active.loaded
        if loaded is not None and item in loaded.text_items:
            return
        time.sleep(0.005)
    log.warning("item %d not in the serving index within %.0f s", item, TIMEOUT_S)


def _wait_for_rows(sessions: Any, user: int, after: float, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with sessions() as session:
            if session.scalar(select(Recommendation.id).where(Recommendation.user_id == user).limit(1)) is not None:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no recommendations for probe user {user} within {timeout_s:.0f} s")
