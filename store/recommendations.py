"""Recommendations served to users, and the recent-events view the app shows next to them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from store.models import Event, Recommendation, table, utcnow

INSERT = insert(table(Recommendation))  # built once: the consumer writes with it every batch


@dataclass(frozen=True, slots=True)
class NewRecommendation:
    user_id: int
    items: Sequence[int]
    """Ranked item ids, best first."""
    scores: Sequence[float]
    model_version_id: int | None = None
    event_id: str | None = None
    """The event that triggered it, if any."""
    event_ts: int | None = None


def write_recommendations(session: Session, rows: Sequence[NewRecommendation]) -> int:
    """Insert many recommendations with one executemany; returns how many were written."""
    if not rows:
        return 0
    now = utcnow()
    params = []
    for row in rows:
        if len(row.items) != len(row.scores):
            raise ValueError(f"user {row.user_id}: {len(row.items)} items but {len(row.scores)} scores")
        params.append(
            {
                "user_id": row.user_id,
                "model_version_id": row.model_version_id,
                "items": [int(i) for i in row.items],
                "scores": [float(s) for s in row.scores],
                "event_id": row.event_id,
                "event_ts": row.event_ts,
                "created_at": now,
            }
        )
    session.execute(INSERT, params)
    return len(params)


def latest_recommendations(session: Session, user_id: int, limit: int = 1) -> list[Recommendation]:
    """The user's most recent recommendation lists, newest first."""
    return list(
        session.scalars(
            select(Recommendation)
            .where(Recommendation.user_id == user_id)
            .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
            .limit(limit)
        )
    )


def recent_events(session: Session, user_id: int, limit: int = 20) -> list[Event]:
    """The user's newest events by event time (ties: latest arrival first)."""
    return list(
        session.scalars(
            select(Event).where(Event.user_id == user_id).order_by(Event.ts.desc(), Event.id.desc()).limit(limit)
        )
    )
