"""A serving loop like the stream consumer's, without Kafka: events -> SQL -> ActiveModel -> recommendations.

Each batch is one transaction: ``append_events`` (idempotent), the touched users' new sequences
through the version ``ActiveModel.current()`` holds, and their top-K written with that version.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from jobs.pipeline import RefitPipeline, RunOutcome, StageHook
from store.active import ActiveModel
from store.events import NewEvent, append_events
from store.recommendations import NewRecommendation, write_recommendations


def refit(settings: Settings, engine: Engine, text_cache: Path, on_stage: StageHook | None = None) -> RunOutcome:
    return RefitPipeline(settings, engine, on_stage=on_stage, text_cache=text_cache).run()


class ServingLoop(threading.Thread):
    """Applies small batches of live clicks until stopped; records the version used per batch."""

    def __init__(self, sessions: sessionmaker[Session], active: ActiveModel, users: list[int], items: list[int],
                 batch: int = 4, pause: float = 0.05, seed: int = 0) -> None:
        super().__init__(daemon=True)
        self.sessions, self.active = sessions, active
        self.users, self.items = users, items
        self.batch, self.pause = batch, pause
        self.rng = random.Random(seed)
        self.sent: list[str] = []
        self.versions: list[int | None] = []
        self.error: BaseException | None = None
        self._stop_flag = threading.Event()

    def _events(self) -> list[NewEvent]:
        now = int(time.time() * 1000)
        out = []
        for _ in range(self.batch):
            event_id = f"live:{len(self.sent) + len(out)}"
            out.append(NewEvent(event_id, self.rng.choice(self.users), self.rng.choice(self.items), now))
        return out

    def run(self) -> None:
        try:
            while not self._stop_flag.is_set():
                events = self._events()
                loaded = self.active.current()
                with self.sessions.begin() as session:
                    result = append_events(session, events, sequence_length=50)
                    version = None
                    if loaded is not None:
                        version = loaded.version_id
                        histories = [result.sequences[user] for user in result.touched_users]
                        found = loaded.recommend(histories, k=5)
                        write_recommendations(session, [
                            NewRecommendation(user, found.ids[row].tolist(), found.scores[row].tolist(), version)
                            for row, user in enumerate(result.touched_users)])
                self.sent.extend(event.event_id for event in events)
                self.versions.append(version)
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_until(self, condition, timeout: float = 60.0) -> bool:  # noqa: ANN001 - a zero-argument callable
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.error is None:
            if condition():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop_flag.set()
        self.join(timeout=30)
