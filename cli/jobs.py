"""``kdrec jobs``: run the refit pipeline once in the foreground, inspect its runs and its lease."""

from __future__ import annotations

import json

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from core.evaluation.report import metrics_table
from core.settings import Settings
from core.text import CheckpointNotFound
from jobs.pipeline import STAGES, RefitPipeline, RunOutcome
from store import job_runs, lease
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade

app = typer.Typer(
    help="The scheduled refit pipeline (refit teacher -> redistil student -> reindex -> "
    "evaluate -> promote or reject): run it now, list its runs, show its lease.",
    no_args_is_help=True,
)
URL_HELP = "Database URL (default: KDREC_DATABASE_URL)."
EXIT_FAILED, EXIT_SKIPPED = 1, 3


def _config(url: str | None) -> Settings:
    return settings(database_url=url) if url else settings()


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def print_outcome(outcome: RunOutcome) -> None:
    """The decision, the reason and both students' holdout metrics."""
    typer.echo(f"run {outcome.run_id}: {outcome.status}" + (f", {outcome.decision}" if outcome.decision else ""))
    typer.echo(f"reason: {outcome.reason}")
    rows = {
        f"{label} v{outcome.versions.get(key)}": outcome.metrics[name]
        for name, label, key in (
            ("active", "active", "active_student"),
            ("candidate", "candidate", "candidate_student"),
            ("candidate_teacher", "cand. teacher", "candidate_teacher"),
        )
        if name in outcome.metrics
    }
    if rows:
        typer.echo(metrics_table(rows))
    if outcome.seconds:
        typer.echo("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in outcome.seconds.items()))


@app.command("run-now")
@friendly_errors(SQLAlchemyError, CheckpointNotFound)
def run_now(
    url: str = typer.Option(None, help=URL_HELP),
    threads: int = typer.Option(None, min=1, help="torch CPU threads (default: torch's choice)."),
    progress: bool = typer.Option(True, help="Show training progress bars."),
) -> None:
    """Run the pipeline once in the foreground with progress.

    Exit code 0: promoted or rejected, 1: failed, 3: skipped (another run holds the lease)."""
    config = _config(url)
    _threads(threads)
    engine = create_engine_for(config.database_url)
    try:
        upgrade(engine)

        def stage(name: str) -> None:
            typer.secho(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}", err=True, bold=True)

        outcome = RefitPipeline(config, engine, on_stage=stage, progress=progress).run()
    finally:
        engine.dispose()
    print_outcome(outcome)
    if outcome.status == "failed":
        raise typer.Exit(EXIT_FAILED)
    if outcome.status == "skipped":
        raise typer.Exit(EXIT_SKIPPED)


def _ndcg(metrics: dict, key: str) -> str:
    value = (metrics or {}).get(key, {}).get("NDCG@10")
    return f"{value:.4f}" if value is not None else "-"


@app.command()
@friendly_errors(SQLAlchemyError)
def runs(
    url: str = typer.Option(None, help=URL_HELP),
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    status: str = typer.Option(None, help="Only runs with this status (running, succeeded, failed, skipped)."),
) -> None:
    """List pipeline runs: status, decision, both students' holdout NDCG@10 and the reason."""
    engine = create_engine_for(_config(url).database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine, read_only=True)() as session:
            rows = job_runs.list_runs(session, status=status, limit=limit)
    finally:
        engine.dispose()
    typer.echo(
        f"{'id':>4} {'status':<10} {'decision':<9} {'started (UTC)':<19} {'min':>6} {'cand':>5} "
        f"{'active':>6} {'cand@10':>8} {'act@10':>8}  reason"
    )
    for run in rows:
        minutes = ((run.finished_at - run.started_at).total_seconds() / 60) if run.finished_at else None
        typer.echo(
            f"{run.id:>4} {run.status:<10} {run.decision or '':<9} {run.started_at:%Y-%m-%d %H:%M:%S} "
            f"{f'{minutes:.1f}' if minutes is not None else '-':>6} {run.candidate_student_id or '':>5} "
            f"{run.active_student_id or '':>6} {_ndcg(run.metrics, 'candidate'):>8} "
            f"{_ndcg(run.metrics, 'active'):>8}  {(run.reason or run.stage or '')[:100]}"
        )


@app.command()
@friendly_errors(SQLAlchemyError, job_runs.RunNotFound)
def show(
    run_id: int = typer.Argument(..., help="A run id from 'kdrec jobs runs'."),
    url: str = typer.Option(None, help=URL_HELP),
) -> None:
    """Everything recorded about one run, as JSON."""
    engine = create_engine_for(_config(url).database_url)
    try:
        with make_sessionmaker(engine, read_only=True)() as session:
            run = job_runs.get_run(session, run_id)
            payload = {column.name: getattr(run, column.name) for column in run.__table__.columns}
    finally:
        engine.dispose()
    typer.echo(json.dumps(payload, indent=2, default=str))


@app.command("lease")
@friendly_errors(SQLAlchemyError)
def show_lease(url: str = typer.Option(None, help=URL_HELP)) -> None:
    """Who holds the pipeline lease and until when (a dead holder's lease expires by itself)."""
    engine = create_engine_for(_config(url).database_url)
    try:
        upgrade(engine)
        with make_sessionmaker(engine, read_only=True)() as session:
            row = lease.current(session, "refit")
            now = lease.db_now(session)
    finally:
        engine.dispose()
    if row is None:
        typer.echo("lease 'refit' is free")
        return
    state = "expired" if row.expires_at <= now else f"expires in {(row.expires_at - now).total_seconds():.0f}s"
    typer.echo(
        f"lease 'refit' held by {row.holder} since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"renewed {row.renewed_at:%H:%M:%S}, {state}"
    )
