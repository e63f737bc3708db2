"""Helpers of the refit tests: one pipeline run, and live clicks sent to Kafka until stopped."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine

from core.settings import KafkaSettings, Settings
from jobs.pipeline import RefitPipeline, RunOutcome, StageHook
from stream.events import ClickEvent
from stream.producer import ClickProducer


def refit(settings: Settings, engine: Engine, text_cache: Path, on_stage: StageHook | None = None) -> RunOutcome:
    return RefitPipeline(settings, engine, on_stage=on_stage, text_cache=text_cache).run()


class LiveClicks(threading.Thread):
    """Clicks of ``users`` on ``items`` at about ``rate`` per second, ``ts`` = now, until ``stop()``."""

    def __init__(
        self, kafka: KafkaSettings, users: list[int], items: Iterable[int], rate: float = 40.0, seed: int = 0
    ) -> None:
        super().__init__(name="live-clicks", daemon=True)
        self.kafka, self.users, self.items, self.rate = kafka, users, list(items), rate
        self.rng = random.Random(seed)
        self.sent: list[str] = []
        self.error: BaseException | None = None
        self._stop_flag = threading.Event()

    def run(self) -> None:
        try:
            self._send()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _send(self) -> None:
        with ClickProducer(self.kafka) as producer:
            for number in itertools.count():
                if self._stop_flag.is_set():
                    break
                event = ClickEvent(
                    event_id=f"live-{number}",
                    user_id=self.rng.choice(self.users),
                    item_id=self.rng.choice(self.items),
                    ts=time.time_ns() // 1_000_000,
                )
                producer.send(event)
                self.sent.append(event.event_id)
                time.sleep(1.0 / self.rate)

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(timeout=30)
