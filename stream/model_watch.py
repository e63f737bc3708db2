"""Loads a newly promoted model version in the background, off the consumer's hot path.

``ActiveModel.current()`` asks the registry and, when another version became active, loads
it completely before swapping one reference. Calling it from this thread every
``check_s`` seconds means the consumer loop only ever reads ``ActiveModel.loaded`` (once per
batch), so a swap costs the loop nothing and happens between two batches.
"""

from __future__ import annotations

import logging
import threading

from store.active import ActiveModel

log = logging.getLogger(__name__)


class ModelWatcher:
    """A daemon thread calling ``active.current()`` every ``check_s`` seconds until stopped."""

    def __init__(self, active: ActiveModel, check_s: float) -> None:
        self.active = active
        self.check_s = check_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kdrec-model-watch", daemon=True)

    def start(self) -> ModelWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                self.active.current(force=True)
            except Exception as exc:  # noqa: BLE001 - the database may be away for a while
                log.warning("could not check the active %s version: %s", self.active.kind, exc)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
