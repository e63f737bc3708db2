"""The SQL reads behind the pages (through ``store`` models and functions; read-only).

Every function takes a ``Session``; frames come back as pandas DataFrames ready for
``st.dataframe`` and altair. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from store import job_runs, registry, skipped
from store.models import CatalogItem, Event, ModelVersion, Recommendation, UserSequence

HISTORIC_S = 3600.0
"""Recommendations whose triggering event is older than this (replayed history) are not
counted in the live latency chart."""


def titles(session: Session) -> dict[int, str]:
    """``item_id -> "Title (year)"`` for the whole catalogue."""
    rows = session.execute(select(CatalogItem.item_id, CatalogItem.title, CatalogItem.year))
    return {item: f"{title} ({year})" if year else title for item, title, year in rows}


def newest_items(session: Session, limit: int = 20) -> list[CatalogItem]:
    """The catalogue's highest ids first (new items take the next free id)."""
    return list(session.scalars(select(CatalogItem).order_by(CatalogItem.item_id.desc()).limit(limit)))


def user_ids(session: Session) -> list[int]:
    """Users with a stored sequence, ascending."""
    return list(session.scalars(select(UserSequence.user_id).order_by(UserSequence.user_id)))


def max_recommendation_id(session: Session, user_id: int) -> int:
    return int(session.scalar(select(func.max(Recommendation.id)).where(Recommendation.user_id == user_id)) or 0)


def recommendation_after(session: Session, user_id: int, after_id: int, min_event_ts: int = 0) -> Recommendation | None:
    """The user's newest recommendation with an id above ``after_id``, triggered by an event at or after
    ``min_event_ts`` (epoch ms); None while there is none.

    A user's events stay in order on their partition, so a recommendation triggered by an event
    no older than a click was computed with that click in the user's sequence."""
    return session.scalars(
        select(Recommendation)
        .where(Recommendation.user_id == user_id, Recommendation.id > after_id, Recommendation.event_ts >= min_event_ts)
        .order_by(Recommendation.id.desc())
        .limit(1)
    ).first()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def recent_events(session: Session, names: dict[int, str], limit: int = 20) -> pd.DataFrame:
    rows = session.execute(
        select(Event.ingested_at, Event.user_id, Event.item_id, Event.type, Event.ts, Event.event_id)
        .order_by(Event.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            {
                "ingested (UTC)": r.ingested_at,
                "user": r.user_id,
                "item": r.item_id,
                "title": names.get(r.item_id, "?"),
                "type": r.type,
                "event time (UTC)": datetime.fromtimestamp(r.ts / 1000, UTC),
                "event id": r.event_id,
            }
            for r in rows
        ]
    )


def recent_recommendations(session: Session, names: dict[int, str], limit: int = 20) -> pd.DataFrame:
    rows = session.scalars(select(Recommendation).order_by(Recommendation.id.desc()).limit(limit)).all()
    out = []
    for r in rows:
        latency = _ms(r.created_at) - r.event_ts if r.event_ts is not None else None
        out.append(
            {
                "written (UTC)": r.created_at,
                "user": r.user_id,
                "model": f"v{r.model_version_id}",
                "top 3": " · ".join(names.get(i, str(i)) for i in r.items[:3]),
                "event → recs (ms)": latency if latency is not None and latency < HISTORIC_S * 1000 else None,
                "event id": r.event_id,
            }
        )
    return pd.DataFrame(out)


def skipped_batches(session: Session, limit: int = 20) -> tuple[int, int, pd.DataFrame]:
    """(batches, offsets) the consumer skipped as undecodable, and the newest of them."""
    batches, offsets = skipped.skipped_totals(session)
    frame = pd.DataFrame(
        [
            {
                "skipped (UTC)": s.skipped_at,
                "topic": s.topic,
                "partition": s.partition,
                "offsets": f"{s.first_offset}..{s.last_offset}",
                "records": s.count,
                "reason": s.reason,
            }
            for s in skipped.recent_skips(session, limit)
        ]
    )
    return batches, offsets, frame


def event_rate(session: Session, since: datetime) -> pd.DataFrame:
    """Events ingested per second since ``since``: columns ``second`` and ``events``."""
    stamps = list(session.scalars(select(Event.ingested_at).where(Event.ingested_at >= since)))
    if not stamps:
        return pd.DataFrame({"second": pd.Series(dtype="datetime64[ns, UTC]"), "events": pd.Series(dtype=int)})
    frame = pd.DataFrame({"second": pd.to_datetime(stamps, utc=True).floor("s")})
    return frame.groupby("second").size().rename("events").reset_index()


def recommendation_latency(session: Session, since: datetime) -> tuple[pd.DataFrame, int]:
    """``(frame, historic)``: per recommendation written since ``since``, its ``created_at`` and
    ``latency_ms`` = created_at - event time; ``historic`` counts those left out (event older
    than ``HISTORIC_S``, i.e. replayed history rather than a live click)."""
    rows = session.execute(
        select(Recommendation.created_at, Recommendation.event_ts).where(
            Recommendation.created_at >= since, Recommendation.event_ts.is_not(None)
        )
    ).all()
    live, historic = [], 0
    for created, event_ts in rows:
        if event_ts is None:  # excluded by the query; keeps the type exact
            continue
        latency = _ms(created) - event_ts
        if latency > HISTORIC_S * 1000:
            historic += 1
        else:
            live.append({"created_at": created, "latency_ms": max(latency, 0)})
    frame = pd.DataFrame(live, columns=["created_at", "latency_ms"])
    if not frame.empty:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame, historic


def window_start(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def versions(session: Session, limit: int = 50) -> list[ModelVersion]:
    return registry.list_versions(session, limit=limit)


def has_job_runs(session: Session) -> bool:
    """Whether this database has the job-runs table (schema revision 0002 or newer)."""
    return inspect(session.connection()).has_table("job_runs")


def job_run_frame(session: Session, limit: int = 50) -> pd.DataFrame:
    rows = job_runs.list_runs(session, limit=limit)
    out = []
    for run in rows:
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        out.append(
            {
                "run": run.id,
                "job": run.job,
                "started (UTC)": run.started_at,
                "status": run.status,
                "stage": run.stage,
                "decision": run.decision,
                "reason": run.reason,
                "candidate teacher": run.candidate_teacher_id,
                "candidate student": run.candidate_student_id,
                "compared with": run.active_student_id,
                "seconds": round(seconds, 1) if seconds is not None else None,
            }
        )
    return pd.DataFrame(out)
