"""The quality gate and the schedule (pure logic, no training)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.settings import JobsConfig
from jobs.gate import decide
from jobs.scheduler import guarded, trigger_for


def test_first_candidate_is_promoted() -> None:
    decision = decide({"NDCG@10": 0.01}, None, tolerance=0.005)
    assert decision.promote and "first candidate" in decision.reason


@pytest.mark.parametrize(
    ("candidate", "active", "promote"),
    [
        (0.100, 0.100, True),  # equal
        (0.120, 0.100, True),  # better
        (0.096, 0.100, True),  # worse, within the tolerance
        (0.095, 0.100, True),  # exactly at the tolerance
        (0.094, 0.100, False),  # worse by more than the tolerance
    ],
)
def test_candidate_must_not_be_worse_than_active_by_more_than_the_tolerance(
    candidate: float, active: float, promote: bool
) -> None:
    decision = decide({"NDCG@10": candidate}, {"NDCG@10": active}, tolerance=0.005 + 1e-12)
    assert decision.promote is promote
    assert f"{candidate:.4f}" in decision.reason and f"{active:.4f}" in decision.reason
    if not promote:
        assert "worse than the active student" in decision.reason


def test_an_unusable_candidate_is_rejected_and_an_unusable_active_one_replaced() -> None:
    assert not decide({"NDCG@10": float("nan")}, {"NDCG@10": 0.1}, 0.005).promote
    assert not decide({}, None, 0.005).promote
    assert decide({"NDCG@10": 0.01}, {"NDCG@10": float("nan")}, 0.005).promote


def test_interval_or_cron_from_settings() -> None:
    interval = trigger_for(JobsConfig(interval_minutes=15))
    assert isinstance(interval, IntervalTrigger) and interval.interval == timedelta(minutes=15)
    cron = trigger_for(JobsConfig(cron="30 3 * * *"))
    assert isinstance(cron, CronTrigger)
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert cron.get_next_fire_time(None, start) == datetime(2026, 1, 2, 3, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="invalid cron"):
        trigger_for(JobsConfig(cron="every day"))


def test_a_crashing_job_does_not_escape_into_the_scheduler() -> None:
    calls = []

    def crash() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    guarded(crash)()
    guarded(crash)()
    assert len(calls) == 2


def test_a_candidate_below_the_popularity_floor_is_rejected_even_first() -> None:
    floor = {"NDCG@10": 0.05}
    first = decide({"NDCG@10": 0.02}, None, tolerance=0.005, floor=floor)
    assert not first.promote and "popularity baseline" in first.reason
    assert decide({"NDCG@10": 0.046}, None, tolerance=0.005, floor=floor).promote  # within the tolerance
    assert not decide({"NDCG@10": 0.03}, {"NDCG@10": 0.02}, tolerance=0.005, floor=floor).promote
    assert decide({"NDCG@10": 0.02}, None, tolerance=0.005, floor={"NDCG@10": float("nan")}).promote
