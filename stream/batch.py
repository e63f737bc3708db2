"""One batch of event records -> SQL and recommendations, without any Kafka I/O.

``decode_batch`` splits raw records into valid events and rejections (with reasons, for the
dead-letter topic). ``apply_batch`` runs ONE SQL transaction: the idempotent
``append_events`` (by ``event_id``), then, when a student is active, one forward pass over
every touched user's updated sequence, one FAISS search for all of them (each user's seen
items excluded) and the top-K rows written to ``recommendations``; then it commits. Either
all of that is stored or none of it, so a redelivered batch changes nothing: its events are
duplicates, and the recommendations they triggered are already stored (they are read back
and returned as ``replayed`` so that the caller can publish them again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.events import NewEvent, UnknownItemError, all_item_ids, append_events, reject_unknown_items
from store.models import Recommendation
from store.recommendations import NewRecommendation, write_recommendations
from store.skipped import Skip, record_skips
from store.versions import LoadedVersion
from stream.events import ClickEvent, Rejection, decode
from stream.metrics import ConsumerMetrics
from stream.poison import PoisonBatch
from stream.recommendations import RecommendationMessage

log = logging.getLogger(__name__)


class Record(Protocol):
    """The parts of a kafka-python ``ConsumerRecord`` a batch reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Catalogue:
    """Item ids known to be in the items table: all of them, read once on first use (one query,
    so a batch naming items for the first time costs no round trip), then ids added to the
    catalogue while the consumer runs are looked up as events name them (one query per batch
    that has any), so new items are accepted at once."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.known: set[int] = set()
        self._loaded = False

    def unknown(self, item_ids: Iterable[int]) -> set[int]:
        """The ids that are not in the items table."""
        if not self._loaded:
            with self.sessions() as session:
                self.known |= all_item_ids(session)
            self._loaded = True
        missing = {item for item in item_ids if item not in self.known}
        if not missing:
            return set()
        try:
            with self.sessions() as session:
                reject_unknown_items(session, missing)
            absent: set[int] = set()
        except UnknownItemError as exc:
            absent = set(exc.item_ids)
        self.known |= missing - absent
        return absent


@dataclass
class Decoded:
    valid: list[tuple[Record, ClickEvent]] = field(default_factory=list)
    rejected: list[tuple[Record, Rejection]] = field(default_factory=list)


def decode_batch(records: Sequence[Record], catalogue: Catalogue, max_bytes: int) -> Decoded:
    """Validate every record; events naming items outside the catalogue are rejected too."""
    out = Decoded()
    for record in records:
        outcome = decode(record.value, max_bytes=max_bytes)
        if isinstance(outcome, Rejection):
            out.rejected.append((record, outcome))
        else:
            out.valid.append((record, outcome))
    unknown = catalogue.unknown({event.item_id for _, event in out.valid})
    if unknown:
        kept = []
        for record, event in out.valid:
            if event.item_id in unknown:
                out.rejected.append(
                    (record, Rejection("unknown_item", f"item_id {event.item_id} is not in the catalogue"))
                )
            else:
                kept.append((record, event))
        out.valid = kept
    return out


@dataclass
class Applied:
    """What one committed batch changed, and the messages to publish for it."""

    inserted: int = 0
    duplicates: int = 0
    touched_users: int = 0
    model_version: int | None = None
    messages: list[RecommendationMessage] = field(default_factory=list)


def skip_rejection(batch: PoisonBatch) -> Rejection:
    """The dead-letter reason of a skipped, undecodable record batch."""
    return Rejection("undecodable_batch", batch.reason)


def apply_batch(
    sessions: sessionmaker[Session],
    valid: Sequence[tuple[Record, ClickEvent]],
    model: LoadedVersion | None,
    *,
    top_k: int,
    sequence_length: int,
    consumed_ms: int,
    metrics: ConsumerMetrics,
    skipped: Sequence[PoisonBatch] = (),
) -> Applied:
    """Store the events, the touched users' recommendations and the batches skipped as
    undecodable (``stream.poison``) in one transaction."""
    skips = [Skip(b.topic, b.partition, b.offset, b.last_offset, b.reason, fingerprint=b.fingerprint) for b in skipped]
    if not valid:
        if skips:
            with sessions.begin() as session:
                record_skips(session, skips)
        return Applied()
    events = [NewEvent(e.event_id, e.user_id, e.item_id, e.ts, e.type) for _, e in valid]
    trigger: dict[int, tuple[Record, ClickEvent]] = {}
    for record, event in valid:
        trigger[event.user_id] = (record, event)  # the user's newest event in this batch
    session = sessions()
    try:
        session.begin()
        with metrics.stage("sql"):
            # Items were checked against the catalogue when decoding.
            result = append_events(session, events, sequence_length=sequence_length, check_items=False)
            record_skips(session, skips)
        applied = Applied(
            result.inserted, result.duplicates, len(result.touched_users), model.version_id if model else None
        )
        rows = (
            _recommend(model, result.touched_users, result.sequences, trigger, top_k, metrics)
            if model is not None and result.touched_users
            else []
        )
        with metrics.stage("write"):
            write_recommendations(session, rows)
            replayed = _stored_for_replayed(session, trigger, set(result.touched_users)) if result.duplicates else []
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    done = now_ms()
    for row in rows:
        record = trigger[row.user_id][0]
        applied.messages.append(
            RecommendationMessage(
                row.user_id,
                row.model_version_id,
                list(row.items),
                list(row.scores),
                row.event_id,
                row.event_ts,
                record.timestamp,
                consumed_ms,
                done,
            )
        )
    for stored in replayed:
        record = trigger[stored.user_id][0]
        applied.messages.append(
            RecommendationMessage(
                stored.user_id,
                stored.model_version_id,
                list(stored.items),
                list(stored.scores),
                stored.event_id,
                stored.event_ts,
                record.timestamp,
                consumed_ms,
                done,
                replayed=True,
            )
        )
    return applied


def _recommend(
    model: LoadedVersion,
    users: Sequence[int],
    sequences: dict[int, list[int]],
    trigger: dict[int, tuple[Record, ClickEvent]],
    top_k: int,
    metrics: ConsumerMetrics,
) -> list[NewRecommendation]:
    """One forward pass and one FAISS search for all touched users (seen items excluded)."""
    histories = [sequences[user] for user in users]
    with metrics.stage("encode"):
        vectors = model.recommender.vectors(histories)
    with metrics.stage("search"):
        found = model.recommender.index.search(vectors, top_k, [set(h) for h in histories])
    rows = []
    for i, user in enumerate(users):
        pairs = found.row(i)
        event = trigger[user][1]
        rows.append(
            NewRecommendation(
                user,
                [item for item, _ in pairs],
                [score for _, score in pairs],
                model.version_id,
                event.event_id,
                event.ts,
            )
        )
    return rows


def _stored_for_replayed(
    session: Session, trigger: dict[int, tuple[Record, ClickEvent]], touched: set[int]
) -> list[Recommendation]:
    """Stored recommendations triggered by this batch's events of users it did not change
    (a redelivered batch): the newest per user, to be published again."""
    users = [user for user in trigger if user not in touched]
    if not users:
        return []
    event_ids = [trigger[user][1].event_id for user in users]
    rows = session.scalars(
        select(Recommendation)
        .where(Recommendation.user_id.in_(users), Recommendation.event_id.in_(event_ids))
        .order_by(Recommendation.id)
    )
    newest = {row.user_id: row for row in rows}
    return [newest[user] for user in users if user in newest]
