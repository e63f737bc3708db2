"""Dataset replay: order (time, per user), deterministic ids, pacing, and publishing to a broker."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.data.catalog import load_dataset
from core.data.dataset import Dataset, Item
from core.settings import KafkaSettings
from store.load import event_id
from stream.events import ClickEvent, decode
from stream.producer import ClickProducer
from stream.replay import RealTimePacer, TokenBucket, replay, replay_events, replay_order
from tests.stream.helpers import read_topic

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ITEMS = {i: Item(i, f"item {i}") for i in range(1, 6)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def test_order_follows_time_but_never_reorders_a_user() -> None:
    data = Dataset(
        "toy", ITEMS, {1: [1, 2, 3], 2: [4, 5], 3: [1], 4: [2, 3]}, {1: [10, 20, 20], 2: [5, 20], 3: [15], 4: [30, 1]}
    )
    order = [(user, pos) for user, pos, _, _ in replay_order(data)]
    # user 4's second event has an earlier timestamp than its first: it still comes after it
    assert order == [(2, 0), (1, 0), (3, 0), (1, 1), (1, 2), (2, 1), (4, 0), (4, 1)]
    assert sorted(replay_order(data)) == sorted(data.events())


def test_without_timestamps_users_are_interleaved_by_position() -> None:
    data = Dataset("toy", ITEMS, {1: [1, 2, 3], 2: [4], 3: [5, 1]})
    assert [(u, p, ts) for u, p, _, ts in replay_order(data)] == [
        (1, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
        (1, 1, 1),
        (3, 1, 1),
        (1, 2, 2),
    ]
    events = list(replay_events(data, limit=4))
    assert [e.event_id for e in events] == ["toy:1:0", "toy:2:0", "toy:3:0", "toy:1:1"]
    assert events[0].event_id == event_id("toy", 1, 0)  # the bulk SQL load's id: idempotent
    with pytest.raises(ValueError, match="too long"):
        list(replay_events(Dataset("x" * 61, ITEMS, {1: [1]})))  # "xxx...:1:1" is 65


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"{SHARED}/ml-100k not present")
def test_ml100k_is_replayed_in_global_time_order() -> None:
    data = load_dataset("ml-100k", [SHARED])
    rows = list(replay_order(data))
    assert len(rows) == data.num_interactions == 100_000
    assert all(a[3] <= b[3] for a, b in itertools.pairwise(rows))  # timestamps sorted per user too
    last_pos: dict[int, int] = {}
    for user, pos, item, _ in rows:
        assert last_pos.get(user, -1) == pos - 1 and data.sequences[user][pos] == item
        last_pos[user] = pos


def test_token_bucket_and_real_time_pacing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(21):
        bucket.acquire()
    assert clock.now == pytest.approx(2.0)  # first one free, then 20 at 10/s
    clock.now += 5  # idle: at most `burst` tokens pile up
    start = clock.now
    for _ in range(3):
        bucket.acquire()
    assert clock.now - start == pytest.approx(0.2)

    clock = FakeClock()
    pacer = RealTimePacer(speedup=10, clock=clock, sleep=clock.sleep)
    released = []
    for ts in (50_000, 51_000, 51_000, 55_000):
        pacer.wait(ts)
        released.append(clock.now)
    assert released == pytest.approx([0.0, 0.1, 0.1, 0.5])


@pytest.mark.kafka
def test_replay_publishes_n_events_in_order_per_user(kafka: KafkaSettings) -> None:
    sequences = {user: [(user * 7 + pos) % 5 + 1 for pos in range(user % 4 + 2)] for user in range(1, 41)}
    data = Dataset("toy", ITEMS, sequences)
    clock = FakeClock()
    with ClickProducer(kafka) as producer:
        stats = replay(data, producer, rate=50, limit=100, progress=False, clock=clock, sleep=clock.sleep)
    assert stats.events == 100
    assert clock.now == pytest.approx((100 - 5) / 50)  # 50/s after a burst of a tenth of a second

    records = read_topic(kafka, kafka.events_topic, 100)
    assert len(records) == 100
    positions: dict[int, list[int]] = defaultdict(list)
    partitions: dict[int, set[int]] = defaultdict(set)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode(record.value, set(ITEMS))
        assert isinstance(event, ClickEvent) and record.key == str(event.user_id).encode()
        user, pos = event.event_id.split(":")[1:]
        assert int(user) == event.user_id and sequences[event.user_id][int(pos)] == event.item_id
        positions[event.user_id].append(int(pos))
        partitions[event.user_id].add(record.partition)
    expected = [(u, p) for u, p, _, _ in list(replay_order(data))[:100]]
    assert sorted((u, p) for u, ps in positions.items() for p in ps) == sorted(expected)
    assert all(ps == list(range(len(ps))) for ps in positions.values())  # in order per user
    assert all(len(p) == 1 for p in partitions.values())


@pytest.mark.kafka
@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason=f"{SHARED}/ml-100k not present")
def test_replay_command(kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.main import app

    monkeypatch.setenv("KDREC_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("KDREC_KAFKA__EVENTS_TOPIC", kafka.events_topic)
    monkeypatch.setenv("KDREC_DATA_DIRS", json.dumps([str(SHARED)]))
    result = CliRunner().invoke(app, ["replay", "--dataset", "ml-100k", "--limit", "300", "--rate", "0"])
    assert result.exit_code == 0, result.output
    assert "published 300 events of ml-100k" in result.output
    records = read_topic(kafka, kafka.events_topic, 300)
    assert len(records) == 300
    first = min(records, key=lambda r: json.loads(r.value)["ts"])
    assert json.loads(first.value)["ts"] == min(ts for _, _, _, ts in load_dataset("ml-100k", [SHARED]).events())
