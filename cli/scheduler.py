"""``kdrec scheduler``: run the refit pipeline on a schedule until stopped (APScheduler, blocking)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from jobs.pipeline import RefitPipeline
from jobs.scheduler import build_scheduler, describe
from store.engine import create_engine_for
from store.migrate import upgrade

app = typer.Typer()
log = logging.getLogger("kdrec.scheduler")


@app.command()
@friendly_errors(SQLAlchemyError, ValueError)
def scheduler(
    interval_minutes: float = typer.Option(
        None, min=0.01, help="Run every N minutes (default: KDREC_JOBS__INTERVAL_MINUTES)."
    ),
    cron: str = typer.Option(
        None, help="A crontab expression in UTC, e.g. '0 3 * * *' (default: KDREC_JOBS__CRON; overrides the interval)."
    ),
    run_at_start: bool = typer.Option(False, "--run-at-start", help="Also run once right away."),
    threads: int = typer.Option(None, min=1, help="torch CPU threads (default: torch's choice)."),
) -> None:
    """Refit the teacher, redistil the student, rebuild the FAISS index, evaluate, promote or reject: on a schedule.

    One run at a time across processes and machines (a database lease). A failed run is recorded; the schedule goes on.

    Ctrl-C or SIGTERM stops scheduling; a run in progress finishes first (Ctrl-C again abandons it).
    """
    config = settings()
    updates = {k: v for k, v in {"interval_minutes": interval_minutes, "cron": cron}.items() if v is not None}
    if updates:
        jobs = type(config.jobs).model_validate({**config.jobs.model_dump(), **updates})
        config = config.model_copy(update={"jobs": jobs})
    if threads:
        import torch

        torch.set_num_threads(threads)
    engine = create_engine_for(config.database_url)
    upgrade(engine)
    pipeline = RefitPipeline(config, engine, progress=False)
    blocking = build_scheduler(pipeline.run, config.jobs, run_at_start=run_at_start)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the scheduler", signum)
        blocking.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    typer.echo(
        f"refit pipeline scheduled {describe(config.jobs)} on "
        f"{engine.url.render_as_string(hide_password=True)}; Ctrl-C to stop",
        err=True,
    )
    try:
        blocking.start()
    except (KeyboardInterrupt, SystemExit):
        blocking.shutdown(wait=False)
    typer.echo("scheduler stopped; a run in progress finishes first (Ctrl-C again to abandon it)", err=True)
