"""APScheduler 3 wiring: the refit pipeline every ``interval_minutes`` or on a ``cron`` schedule.

The job never raises into the scheduler (a failed run is recorded by the pipeline and logged
here), one instance runs at a time in this process (``max_instances=1``; across processes the
database lease decides), and runs missed while one was running are coalesced into one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.settings import JobsConfig

log = logging.getLogger(__name__)
JOB_ID = "refit"


def trigger_for(config: JobsConfig) -> BaseTrigger:
    """A crontab trigger (``JobsConfig.cron``, UTC) when set, else every ``interval_minutes``."""
    if config.cron:
        try:
            return CronTrigger.from_crontab(config.cron, timezone=UTC)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {config.cron!r} (KDREC_JOBS__CRON): {exc}") from None
    return IntervalTrigger(minutes=config.interval_minutes, timezone=UTC)


def guarded(job: Callable[[], object], name: str = JOB_ID) -> Callable[[], None]:
    """``job`` with every exception logged and swallowed, so the next run still happens."""

    def run() -> None:
        try:
            outcome = job()
        except Exception:
            log.exception("scheduled %s crashed; it runs again at the next trigger", name)
            return
        status = getattr(outcome, "status", None)
        if status is not None:
            log.info(
                "scheduled %s finished: %s %s (%s)",
                name,
                status,
                getattr(outcome, "decision", None) or "",
                getattr(outcome, "reason", ""),
            )

    return run


def build_scheduler(
    job: Callable[[], object], config: JobsConfig, scheduler: BaseScheduler | None = None, run_at_start: bool = False
) -> BaseScheduler:
    """A scheduler (default: ``BlockingScheduler``) with the guarded job on the configured trigger."""
    scheduler = scheduler if scheduler is not None else BlockingScheduler(timezone=UTC)
    options: dict[str, object] = {
        "id": JOB_ID,
        "name": "refit -> redistil -> reindex -> gate",
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": None,
        "replace_existing": True,
    }
    if run_at_start:
        options["next_run_time"] = datetime.now(UTC)
    scheduler.add_job(guarded(job), trigger_for(config), **options)
    return scheduler


def describe(config: JobsConfig) -> str:
    return f"cron '{config.cron}' (UTC)" if config.cron else f"every {config.interval_minutes:g} minutes"
