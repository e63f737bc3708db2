"""Shared pieces of the consumer tests: a catalogue, a tiny published student, consumers run in
a thread or as a ``kdrec consume`` subprocess, click streams with a ground truth, SQL checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models.student import Student
from core.settings import KafkaSettings, ServeConfig, StudentConfig
from store.active import ActiveModel
from store.engine import create_engine_for, make_sessionmaker
from store.models import CatalogItem, Event, Recommendation, UserSequence
from store.versions import new_artifact_folder, publish
from stream.consumer import StreamConsumer
from stream.events import ClickEvent
from stream.options import ConsumerOptions
from stream.producer import ClickProducer

REPO = Path(__file__).resolve().parents[2]
NUM_ITEMS = 60
SEQUENCE_LENGTH = 30
SERVE = ServeConfig(top_k=5)
FAST = ConsumerOptions(
    poll_timeout_ms=200, probe_every_s=0.5, backoff_initial_s=0.2, backoff_max_s=1.0, model_check_s=0.2
)


def fast_group(kafka: KafkaSettings) -> KafkaSettings:
    """Shorter group sessions than the defaults: joins and failovers take ~1.5 s, not ~3 s."""
    return kafka.model_copy(update={"session_timeout_ms": 3000, "heartbeat_interval_ms": 1000})


def add_catalogue(sessions: sessionmaker[Session], count: int = NUM_ITEMS) -> None:
    with sessions.begin() as session:
        session.add_all([CatalogItem(item_id=i, title=f"Item {i}", genres="Drama") for i in range(1, count + 1)])


def publish_student(sessions: sessionmaker[Session], root: Path, seed: int, promote: bool = True) -> int:
    """A tiny random student over the catalogue, published (and promoted); its version id."""
    torch.manual_seed(seed)
    student = Student(
        StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=SEQUENCE_LENGTH), num_items=NUM_ITEMS
    ).eval()
    with sessions.begin() as session:
        version = publish(
            session,
            student,
            new_artifact_folder(root, "student", f"s{seed}"),
            metrics={},
            config={"seed": seed},
            serve=SERVE,
            promote=promote,
        )
        return version.id


@dataclass
class Stream:
    """Click events and what SQL must hold once they are all applied."""

    events: list[ClickEvent]

    def truth(self, limit: int = SEQUENCE_LENGTH) -> dict[int, list[int]]:
        per_user: dict[int, list[int]] = defaultdict(list)
        for event in sorted(self.events, key=lambda e: e.ts):  # ts strictly increasing
            per_user[event.user_id].append(event.item_id)
        return {user: items[-limit:] for user, items in per_user.items()}


def click_stream(count: int, users: int, prefix: str, start_ts: int = 1_700_000_000_000, seed: int = 0) -> Stream:
    """``count`` clicks over ``users`` users, distinct increasing timestamps, small payloads."""
    generator = torch.Generator().manual_seed(seed)
    user_ids = torch.randint(0, users, (count,), generator=generator).tolist()
    items = torch.randint(1, NUM_ITEMS + 1, (count,), generator=generator).tolist()
    return Stream(
        [
            ClickEvent(event_id=f"{prefix}{i}", user_id=u, item_id=it, ts=start_ts + i)
            for i, (u, it) in enumerate(zip(user_ids, items, strict=True))
        ]
    )


def send_all(kafka: KafkaSettings, events: list[ClickEvent]) -> None:
    with ClickProducer(kafka) as producer:
        for event in events:
            producer.send(event)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def event_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def stored_sequences(sessions: sessionmaker[Session]) -> dict[int, list[int]]:
    with sessions() as session:
        return {user: list(items) for user, items in session.execute(select(UserSequence.user_id, UserSequence.items))}


def assert_applied_exactly_once(sessions: sessionmaker[Session], stream: Stream) -> None:
    """Every event stored once, every sequence equal to the ground truth, no recommendation
    written twice for one triggering event."""
    with sessions() as session:
        stored = list(session.scalars(select(Event.event_id)))
        rec_keys = list(session.execute(select(Recommendation.user_id, Recommendation.event_id)))
    assert len(stored) == len(set(stored)) == len(stream.events)
    assert set(stored) == {event.event_id for event in stream.events}
    assert stored_sequences(sessions) == stream.truth()
    assert len(rec_keys) == len(set(rec_keys))


@contextmanager
def consumer_thread(
    kafka: KafkaSettings, database_url: str, options: ConsumerOptions = FAST
) -> Iterator[StreamConsumer]:
    """A ``StreamConsumer`` running in a thread on its own engine; stopped (and checked) on exit."""
    engine = create_engine_for(database_url)
    active = ActiveModel(make_sessionmaker(engine, read_only=True), SERVE, check_every=0.0)
    consumer = StreamConsumer(
        kafka, SERVE, make_sessionmaker(engine), active, sequence_length=SEQUENCE_LENGTH, options=options
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="test-consumer", daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        consumer.stop()
        thread.join(30)
        engine.dispose()
    assert not thread.is_alive(), "the consumer did not stop within 30 s"
    if failure:
        raise failure[0]


def wait_assigned(consumers: list[StreamConsumer], partitions: int, timeout_s: float = 60.0) -> None:
    """Until the consumers own disjoint, non-empty shares covering every partition."""

    def split() -> bool:
        owned = [consumer.assignment() for consumer in consumers]
        union = set().union(*owned)
        return all(owned) and len(union) == partitions and sum(map(len, owned)) == partitions

    wait_until(split, timeout_s, f"{len(consumers)} consumers to share {partitions} partitions")


def consumer_env(kafka: KafkaSettings, database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KDREC_")}
    env.update(
        {
            "KDREC_DATABASE_URL": database_url,
            "KDREC_SEQUENCE_LENGTH": str(SEQUENCE_LENGTH),
            "KDREC_SERVE__TOP_K": str(SERVE.top_k),
            "KDREC_KAFKA__EMBEDDED_BROKER": "false",
            "OMP_NUM_THREADS": "1",
        }
    )
    for name, value in json.loads(kafka.model_dump_json()).items():
        if value is not None:
            env[f"KDREC_KAFKA__{name.upper()}"] = str(value)
    return env


def spawn_consumer(kafka: KafkaSettings, database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """``kdrec consume`` in a subprocess (output to ``log_path``)."""
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "consume", "--model-check", "0.5", "--poll-timeout-ms", "200"],
            cwd=REPO,
            env=consumer_env(kafka, database_url),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
