"""Bulk write and read-back of recommendations."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store import registry
from store.recommendations import NewRecommendation, latest_recommendations, write_recommendations


def test_write_in_bulk_and_read_latest_first(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        version = registry.register(session, "student", "a/s1")
        assert write_recommendations(session, []) == 0
        written = write_recommendations(
            session,
            [
                NewRecommendation(1, [5, 3, 9], [0.9, 0.5, 0.1], version.id, "e-1", 1000),
                NewRecommendation(2, [1], [2.0]),
            ],
        )
        assert written == 2
    with sessions.begin() as session:
        write_recommendations(session, [NewRecommendation(1, [3, 5], [0.7, 0.6], version.id, "e-2", 2000)])
    with sessions() as session:
        latest = latest_recommendations(session, 1, limit=5)
        assert [r.event_id for r in latest] == ["e-2", "e-1"]
        assert (latest[0].items, latest[0].scores, latest[0].model_version_id) == ([3, 5], [0.7, 0.6], version.id)
        assert latest[0].created_at.tzinfo is not None
        other = latest_recommendations(session, 2)
        assert other[0].items == [1] and other[0].model_version_id is None and other[0].event_ts is None
        assert latest_recommendations(session, 3) == []
    with pytest.raises(ValueError, match="2 items but 1 scores"), sessions.begin() as session:
        write_recommendations(session, [NewRecommendation(1, [1, 2], [0.5])])
