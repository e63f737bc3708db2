"""Keeps the active student's live index in step with the catalogue: items it never learnt are
served from their text (``LoadedVersion.add_text_items``) as soon as SQL holds them.

The catalogue in SQL is the truth, so this needs no Kafka: ``sync`` adds to the serving index
every item beyond it (``store.catalogue.items_after``) and, for a version it has not synced yet
(a newly promoted one, or the first at start-up), every item beyond what that version learnt.
Text-only items whose text changed are passed in and replaced. The item feed calls ``sync``
after each batch it stored and ``sync_if_due`` between polls, so a consumer process whose feed
does not own the single items partition serves new items within ``sync_every_s`` too.

A version without a text map (or with one fitted on another LM than the encoder's) serves no
text-only items; that is said once per version. Failures (database away, LM missing) are
logged and retried after a backoff: the items are in SQL, so nothing is lost.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from core.data.dataset import Item
from core.text.checkpoint import CheckpointNotFound
from core.text.live import TextEncoder
from store.active import ActiveModel
from store.catalogue import items_after
from store.versions import LoadedVersion
from stream.clients import Backoff

log = logging.getLogger(__name__)

LOG_EACH = 20
"""Served items logged one line each up to this many at once (a version's first sync may be larger)."""


class TextServing:
    """Adds catalogue items the active version never learnt to its index, from their text."""

    def __init__(
        self,
        active: ActiveModel,
        sessions: sessionmaker[Session],
        encoder: TextEncoder,
        *,
        sync_every_s: float = 2.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.active = active
        self.sessions = sessions
        self.encoder = encoder
        self.sync_every_s = sync_every_s
        self.served = 0
        """Items added to (or replaced in) a serving index so far."""
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._synced_version: int | None = None
        self._full = True
        self._next_sync = 0.0
        self._warned: set[int] = set()

    def sync_if_due(self) -> None:
        """A sync every ``sync_every_s``, and at once when another version became active (unless
        the last attempt failed: then after its backoff)."""
        loaded = self.active.loaded
        if loaded is None:
            return
        swapped = loaded.version_id != self._synced_version and not self._backoff.attempt
        if swapped or time.monotonic() >= self._next_sync:
            self.sync([])

    def sync(self, changed: list[Item]) -> int:
        """Serve every catalogue item the active version lacks, and ``changed`` text-only items
        again; returns how many were added or replaced."""
        loaded = self.active.loaded
        if loaded is None:
            return 0
        self._next_sync = time.monotonic() + self.sync_every_s
        if not self._usable(loaded):
            self._synced_version = loaded.version_id
            return 0
        full = self._full or loaded.version_id != self._synced_version
        learnt, served = loaded.model.num_items, loaded.recommender.index.num_items
        try:
            with self.sessions() as session:
                pending = {item.item_id: item for item in items_after(session, learnt if full else served)}
            for item in changed:  # a text-only item whose text changed: replace its vector
                if learnt < item.item_id <= served:
                    pending.setdefault(item.item_id, item)
            items = [pending[item_id] for item_id in sorted(pending)]
            added = loaded.add_text_items(items, self.encoder.encode([item.text() for item in items])) if items else 0
        except Exception as exc:  # noqa: BLE001 - database away, LM missing: try again later
            self._full = True
            self._next_sync = time.monotonic() + self._backoff.next()
            log.warning("could not serve new items from their text: %s: %s", type(exc).__name__, exc)
            return 0
        self._backoff.reset()
        self._synced_version = loaded.version_id
        self._full = False
        self.served += added
        _log_served(items, loaded.version_id)
        return added

    def _usable(self, loaded: LoadedVersion) -> bool:
        """Whether this version can serve items from text; says why not once per version."""
        problem = None
        if loaded.text_map is None:
            problem = "has no text map"
        else:
            try:
                if loaded.text_map.lm != self.encoder.identity():
                    problem = "has a text map fitted on another language model"
            except CheckpointNotFound as exc:
                problem = f"cannot read new items' text ({exc})"
        if problem is None:
            return True
        if loaded.version_id not in self._warned:
            self._warned.add(loaded.version_id)
            log.info(
                "student version %d %s: new items are stored and clickable, but not recommended until the next refit",
                *(loaded.version_id, problem),
            )
        return False


def _log_served(items: list[Item], version: int) -> None:
    if len(items) > LOG_EACH:
        log.info(
            "%d items (ids %d..%d) recommendable from their text by student version %d",
            *(len(items), items[0].item_id, items[-1].item_id, version),
        )
        return
    for item in items:
        log.info("item %d (%r) recommendable from its text by student version %d", item.item_id, item.title, version)
