"""Record batches the stream consumer skipped as undecodable: written with the batch that
skipped them, read by the app's Live page and ``kdrec consume``'s logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.dialect import insert
from store.models import SkippedRecords, table, utcnow


@dataclass(frozen=True)
class Skip:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    reason: str
    skipped_at: datetime | None = None
    fingerprint: int = 0

    @property
    def count(self) -> int:
        return self.last_offset - self.first_offset + 1


def record_skips(session: Session, skips: Sequence[Skip]) -> None:
    """Insert skips inside the caller's transaction; one already recorded is left as it is."""
    if not skips:
        return
    now = utcnow()
    rows = [
        {
            "topic": s.topic,
            "partition": s.partition,
            "first_offset": s.first_offset,
            "last_offset": s.last_offset,
            "fingerprint": s.fingerprint,
            "reason": s.reason,
            "skipped_at": now,
        }
        for s in skips
    ]
    statement = insert(session, table(SkippedRecords)).on_conflict_do_nothing(
        index_elements=["topic", "partition", "first_offset", "fingerprint"]
    )
    session.execute(statement, rows)


def recent_skips(session: Session, limit: int = 50) -> list[Skip]:
    """The newest skips first."""
    rows = session.scalars(select(SkippedRecords).order_by(SkippedRecords.id.desc()).limit(limit))
    return [
        Skip(r.topic, r.partition, r.first_offset, r.last_offset, r.reason, r.skipped_at, r.fingerprint) for r in rows
    ]


def skipped_totals(session: Session) -> tuple[int, int]:
    """(batches, offsets) skipped so far."""
    batches, offsets = session.execute(
        select(
            func.count(), func.coalesce(func.sum(SkippedRecords.last_offset - SkippedRecords.first_offset + 1), 0)
        ).select_from(SkippedRecords)
    ).one()
    return int(batches), int(offsets)
