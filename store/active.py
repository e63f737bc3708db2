"""The active version of a model kind, loaded once and swapped when the registry changes.

Consumers and the app hold an ``ActiveModel`` and call ``current()`` between batches (or
requests). It asks the registry at most every ``check_every`` seconds; when another version
has become active it loads that version completely (model + index) *before* replacing the
reference, so callers see either the old version or the new one, never a half-loaded one.
A version that fails to load is logged and the previous one keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from core.settings import ServeConfig
from store import registry
from store.versions import LoadedVersion, load_version

log = logging.getLogger(__name__)


class ActiveModel:
    """Holds the loaded active version of ``kind`` and swaps it atomically when it changes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        serve: ServeConfig,
        kind: str = "student",
        check_every: float = 2.0,
        device: str = "cpu",
    ) -> None:
        self.sessions = sessions
        self.serve = serve
        self.kind = kind
        self.check_every = check_every
        self.device = device
        self._loaded: LoadedVersion | None = None
        self._checked_at = float("-inf")
        self._failed: set[int] = set()
        self._lock = threading.Lock()
        self.swaps = 0
        self.last_swap_seconds = 0.0

    @property
    def loaded(self) -> LoadedVersion | None:
        """The version in hand, without asking the registry."""
        return self._loaded

    def current(self, force: bool = False) -> LoadedVersion | None:
        """The active version, reloaded first if the registry now names another one."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_every:
            return self._loaded
        with self._lock:
            self._checked_at = now
            with self.sessions() as session:
                active = registry.get_active(session, self.kind)
                if active is None:
                    return self._loaded
                if self._loaded is not None and active.id == self._loaded.version_id:
                    return self._loaded
                if active.id in self._failed:
                    return self._loaded
                session.expunge(active)
            started = time.perf_counter()
            try:
                fresh = load_version(active, self.serve, self.device)
            except Exception:  # a broken artifact must not stop serving
                log.exception(
                    "could not load %s version %d; keeping %s",
                    self.kind,
                    active.id,
                    self._loaded.version_id if self._loaded else "none",
                )
                self._failed.add(active.id)
                return self._loaded
            previous = self._loaded
            self._loaded = fresh  # one reference assignment: readers see old or new, never half
            self.swaps += 1
            self.last_swap_seconds = time.perf_counter() - started
            log.info(
                "%s version %s -> %d (loaded in %.2fs)",
                self.kind,
                previous.version_id if previous else "none",
                fresh.version_id,
                self.last_swap_seconds,
            )
            return fresh
