"""Replay a dataset onto the events topic as live traffic, in time order, at a controlled pace.

Order: all users' events merged by ``(ts, user)`` while each user's own events keep their
sequence order (a k-way merge of per-user streams, so even equal or out-of-order timestamps
never reorder a user). With real timestamps (ML-100K) that is the global time order; datasets
without timestamps (ML-1M) use the position as time, so users are interleaved round-robin by
position: every user's 1st item, then every user's 2nd, ...

Event ids are ``store.load.event_id(dataset, user, position)`` and ``ts`` is the dataset's
time (as in ``Dataset.events``), exactly what the bulk SQL load writes, so replaying data that
is already loaded inserts nothing.

Pace: ``rate`` caps events per second (token bucket, bursts up to a tenth of a second);
``speedup`` follows the dataset's clock ``speedup`` times faster than real time. Both can be
given (the slower wins); neither means as fast as the broker takes them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tqdm import tqdm

from core.data.dataset import Dataset
from store.load import event_id
from stream.events import MAX_EVENT_ID, ClickEvent
from stream.producer import ClickProducer

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def _user_events(dataset: Dataset, user: int) -> Iterator[tuple[int, int, int, int]]:
    times = dataset.timestamps[user] if dataset.timestamps is not None else None
    for pos, item in enumerate(dataset.sequences[user]):
        yield (times[pos] * 1000 if times is not None else pos), user, pos, item


def replay_order(dataset: Dataset) -> Iterator[tuple[int, int, int, int]]:
    """``(user, position, item, ts_ms)`` of every interaction, in replay order."""
    streams = [_user_events(dataset, user) for user in sorted(dataset.sequences)]
    for ts, user, pos, item in heapq.merge(*streams, key=lambda row: (row[0], row[1])):
        yield user, pos, item, ts


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.last = clock()

    def acquire(self, n: float = 1.0) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate) - n
        self.last = now
        if self.tokens < 0:  # in debt: wait until it is paid back
            self.sleep(-self.tokens / self.rate)


class RealTimePacer:
    """Releases an event when ``(ts - first ts) / speedup`` of wall time has passed."""

    def __init__(self, speedup: float, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self.clock = clock
        self.sleep = sleep
        self.start: tuple[float, int] | None = None

    def wait(self, ts_ms: int) -> None:
        if self.start is None:
            self.start = (self.clock(), ts_ms)
            return
        wall0, ts0 = self.start
        delay = wall0 + (ts_ms - ts0) / 1000 / self.speedup - self.clock()
        if delay > 0:
            self.sleep(delay)


@dataclass
class ReplayStats:
    events: int
    seconds: float
    first_ts: int | None
    last_ts: int | None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def replay_events(dataset: Dataset, limit: int | None = None) -> Iterator[ClickEvent]:
    """The dataset as ``ClickEvent`` objects in replay order (first ``limit`` only)."""
    longest = event_id(
        dataset.name,
        max(dataset.sequences, default=0),
        max((len(seq) for seq in dataset.sequences.values()), default=0),
    )
    if len(longest) > MAX_EVENT_ID:
        raise ValueError(
            f"dataset name {dataset.name!r} is too long: event ids like {longest!r} exceed {MAX_EVENT_ID} characters"
        )
    for user, pos, item, ts in itertools.islice(replay_order(dataset), limit):
        yield ClickEvent(event_id=event_id(dataset.name, user, pos), user_id=user, item_id=item, ts=ts)


def replay(
    dataset: Dataset,
    producer: ClickProducer,
    *,
    rate: float | None = None,
    speedup: float | None = None,
    limit: int | None = None,
    progress: bool = True,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> ReplayStats:
    """Publish the dataset's interactions in replay order; waits for every acknowledgement."""
    bucket = TokenBucket(rate, clock=clock, sleep=sleep) if rate else None
    pacer = RealTimePacer(speedup, clock=clock, sleep=sleep) if speedup else None
    total = dataset.num_interactions if limit is None else min(limit, dataset.num_interactions)
    started = time.perf_counter()
    sent = 0
    first_ts = last_ts = None
    with tqdm(total=total, unit="ev", unit_scale=True, desc=f"replay {dataset.name}", disable=not progress) as bar:
        for event in replay_events(dataset, limit):
            if pacer is not None:
                pacer.wait(event.ts)
            if bucket is not None:
                bucket.acquire()
            producer.send(event)
            sent += 1
            first_ts = event.ts if first_ts is None else first_ts
            last_ts = event.ts
            bar.update(1)
        producer.flush()
    stats = ReplayStats(sent, time.perf_counter() - started, first_ts, last_ts)
    log.info(
        "replayed %d events of %s in %.1f s (%.0f/s)",
        stats.events,
        dataset.name,
        stats.seconds,
        stats.events_per_second,
    )
    return stats
