"""New item -> first recommendation list containing it, on the embedded broker (bench.cold_start).

A fresh SQLite store holds the known items; the served student (trained on them, with its text
map) is the active version; a stream consumer runs in this process with its item feed, as
``kdrec consume`` does. Each probe user first clicks the held-out item's nearest known items by
text (cosine of the LM encodings). A session of an item's look-alikes does not always ask for
that item (the student predicts what comes next), and an item no list would contain has no
latency to time: so the probed items are the first ``count`` held-out items that such a session
ranks in its top ``ServeConfig.top_k`` offline, with every held-out item's text vector in the
index (``probe_ranks``; how many of all held-out items qualify is reported). Items whose title
the topic contract refuses as it is (empty, or over ``MAX_TITLE`` characters) go out titled
``UNTITLED`` or cut short, to keep the ids dense, and are never timed. Then every held-out
item up to the last probed one is published to the items topic, one at a time in id order (ids
are dense); for a probed item, every ``PROBE_EVERY_MS`` a new probe user clicks the item's
look-alikes (a new user each time, so every session is exactly the one ranked offline: one user
clicking again would drift), and the latency is from publishing to the creation of the first
recommendation row, of any of the item's probe users, that contains the item. Items not
recommended within ``TIMEOUT_S`` are counted, not timed.
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
from stream.items import MAX_TITLE, publish_items
from stream.net import free_port
from stream.options import ConsumerOptions
from stream.producer import ClickProducer

log = logging.getLogger("bench.cold_start")
PROBE_LEN = 5
PROBE_EVERY_MS = 50
TIMEOUT_S = 5.0
FIRST_PROBE_USER = 10_000_000
UNTITLED = "(untitled)"
ROUNDS = int(TIMEOUT_S * 1000 / PROBE_EVERY_MS) + 1
"""Probe users an item may take (ids ``FIRST_PROBE_USER + item * ROUNDS + round``)."""
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
    titled = {item for item in held_out if 1 <= len(split.data.items[item].title.strip()) <= MAX_TITLE}
    listed, probed, items = probe_plan(held_out, ranks, titled, top_k, count)
    latencies: list[float | None] = []
    indexed: list[float | None] = []
    late = 0
    if probed:
        latencies, indexed, late = _run(student, text_map, split, items, probed, sessions_of)
    found = [ms for ms in latencies if ms is not None]
    in_index = [ms for ms in indexed if ms is not None]
    result: dict[str, Any] = {
        "held_out": len(held_out),
        "title_refused": len(held_out) - len(titled),
        "listed_offline": len(listed),
        "top_k": top_k,
        "published": len(items),
        "not_indexed_untimed": late,
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


def probe_plan(
    held_out: list[int], ranks: dict[int, int], titled: set[int], top_k: int, count: int
) -> tuple[list[int], set[int], list[int]]:
    """``(listed, probed, published)``: the titled held-out items their probe session ranks in
    its top ``top_k``; the first ``count`` of them; every held-out item up to the last probed one."""
    listed = [item for item in held_out if ranks[item] < top_k and item in titled]
    probed = set(listed[:count])
    return listed, probed, [item for item in held_out if probed and item <= max(probed)]


def _run(
    student: SequenceModel,
    text_map: TextMap,
    split: ColdSplit,
    items: list[int],
    probed: set[int],
    sessions_of: dict[int, list[int]],
) -> tuple[list[float | None], list[float | None], int]:
    """A fresh store, broker and consumer serving ``student``; then ``_probe``."""
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
                return _probe(kafka, sessions, items, probed, sessions_of, split, active)
            finally:
                consumer.stop()
                thread.join(30)
                engine.dispose()


def _probe(
    kafka: KafkaSettings,
    sessions: Any,
    items: list[int],
    probed: set[int],
    sessions_of: dict[int, list[int]],
    split: ColdSplit,
    active: ActiveModel,
) -> tuple[list[float | None], list[float | None], int]:
    """Publish ``items`` in order; time the ``probed`` ones (the others only wait for the index:
    the last of the three counts those that did not get there in time)."""
    with ClickProducer(kafka) as producer:
        for known in sessions_of[max(probed)]:  # one session before any new item exists
            producer.publish_click(FIRST_PROBE_USER, known)
        producer.flush(30)
        _wait_for_rows(sessions, FIRST_PROBE_USER, 0.0, 60.0)  # the consumer is running and caught up
        latencies: list[float | None] = []
        indexed: list[float | None] = []
        late = 0
        for item in items:
            record = {"item_id": item, "title": split.data.items[item].title.strip()[:MAX_TITLE] or UNTITLED}
            record |= dict(split.data.items[item].fields)
            started = time.time()
            publish_items(kafka, [record])
            if item not in probed:
                late += not _until_indexed(active, item, started + TIMEOUT_S)
                continue
            first_user = FIRST_PROBE_USER + item * ROUNDS
            seen = _until_recommended(producer, sessions, first_user, item, sessions_of[item], started, active)
            latencies.append(seen[0])
            indexed.append(seen[1])
            log.info("item %d: %s", item, "not recommended" if latencies[-1] is None else f"{latencies[-1]:.0f} ms")
    return latencies, indexed, late


def _until_recommended(
    producer: ClickProducer,
    sessions: Any,
    first_user: int,
    item: int,
    clicks: list[int],
    started: float,
    active: ActiveModel,
) -> tuple[float | None, float | None]:
    """Milliseconds from publishing to the first list with the item, and to its entry in the
    serving index (None: not within the timeout). Probe users ``first_user``, ``first_user + 1``,
    ... each click ``clicks``, one user every ``PROBE_EVERY_MS``; only a list made after a probe
    user's last click counts (one made from a prefix of the session is not the session ranked
    offline)."""
    deadline, next_click, indexed, users = started + TIMEOUT_S, 0.0, None, 0
    complete: set[str] = set()  # each probe user's last click: its list reads the whole session
    while time.time() < deadline:
        if indexed is None and _in_index(active, item):
            indexed = (time.time() - started) * 1000
        if time.time() >= next_click and users < ROUNDS:
            events = [producer.publish_click(first_user + users, click) for click in clicks]
            complete.add(events[-1].event_id)
            producer.flush(5)
            users += 1
            next_click = time.time() + PROBE_EVERY_MS / 1000
        with sessions() as session:
            rows = session.execute(
                select(Recommendation.items, Recommendation.created_at, Recommendation.event_id).where(
                    Recommendation.user_id.between(first_user, first_user + users - 1)
                )
            ).all()
        hits = [
            created.timestamp()
            for ranked, created, event in rows
            if event in complete and item in ranked and created.timestamp() >= started
        ]
        if hits:
            return (min(hits) - started) * 1000, indexed
        time.sleep(0.005)
    return None, indexed


def _in_index(active: ActiveModel, item: int) -> bool:
    loaded = active.loaded
    return loaded is not None and item in loaded.text_items


def _until_indexed(active: ActiveModel, item: int, deadline: float) -> bool:
    """Whether ``item`` reached the serving index by ``deadline``."""
    while time.time() < deadline:
        if _in_index(active, item):
            return True
        time.sleep(0.005)
    log.warning("item %d not in the serving index within %.0f s", item, TIMEOUT_S)
    return False


def _wait_for_rows(sessions: Any, user: int, after: float, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with sessions() as session:
            if session.scalar(select(Recommendation.id).where(Recommendation.user_id == user).limit(1)) is not None:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no recommendations for probe user {user} within {timeout_s:.0f} s")
