"""``kdrec models``: the model registry for operators (list, promote, roll back, reject)."""

from __future__ import annotations

import typer
from sqlalchemy.exc import SQLAlchemyError

from cli.context import friendly_errors, settings
from store import registry
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade
from store.models import ModelVersion

app = typer.Typer(
    help="Model versions in the registry: list them, promote one, roll back, reject. Consumers "
    "and the app pick the active student up by themselves within seconds.",
    no_args_is_help=True,
)
URL_HELP = "Database URL (default: KDREC_DATABASE_URL)."
ERRORS = (SQLAlchemyError, registry.RegistryError, registry.VersionNotFound)


def _sessions(url: str | None):
    engine = create_engine_for(url or settings().database_url)
    upgrade(engine)
    return engine, make_sessionmaker(engine)


def _metric(version: ModelVersion, name: str = "NDCG@10") -> str:
    holdout = (version.metrics or {}).get("holdout") or (version.metrics or {}).get("test") or {}
    value = holdout.get(name)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


@app.command("list")
@friendly_errors(*ERRORS)
def list_versions(
    kind: str = typer.Option(None, help="Only 'teacher' or 'student' versions."),
    status: str = typer.Option(None, help="Only candidate, active, retired or rejected ones."),
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    url: str = typer.Option(None, help=URL_HELP),
) -> None:
    """Versions, newest first: status, parent teacher, holdout NDCG@10 and why a version was retired or rejected."""
    engine, sessions = _sessions(url)
    try:
        with sessions() as session:
            rows = registry.list_versions(session, kind=kind, status=status, limit=limit)
    finally:
        engine.dispose()
    typer.echo(
        f"{'id':>4} {'kind':<8} {'status':<10} {'parent':>6} {'NDCG@10':>8} {'created (UTC)':<19}  note / artifact"
    )
    for v in rows:
        typer.echo(
            f"{v.id:>4} {v.kind:<8} {v.status:<10} {v.parent_id or '':>6} {_metric(v):>8} "
            f"{v.created_at:%Y-%m-%d %H:%M:%S}  {(v.note or v.artifact_path)[:110]}"
        )


@app.command()
@friendly_errors(*ERRORS)
def promote(
    version: int = typer.Argument(..., help="The version id to make active."),
    url: str = typer.Option(None, help=URL_HELP),
) -> None:
    """Make a candidate or retired version active (the previous active version of its kind is retired)."""
    engine, sessions = _sessions(url)
    try:
        with sessions.begin() as session:
            target = registry.get_version(session, version)
            previous = registry.promote(session, version)
            kind = target.kind
    finally:
        engine.dispose()
    typer.echo(f"{kind} v{version} is active" + (f" (replaced v{previous.id})" if previous else ""))


@app.command()
@friendly_errors(*ERRORS)
def rollback(
    kind: str = typer.Option("student", help="teacher or student."), url: str = typer.Option(None, help=URL_HELP)
) -> None:
    """Re-activate the version of KIND that was active before the current one."""
    engine, sessions = _sessions(url)
    try:
        with sessions.begin() as session:
            current = registry.get_active(session, kind)
            restored = registry.rollback(session, kind)
            restored_id = restored.id
    finally:
        engine.dispose()
    typer.echo(f"{kind} v{restored_id} is active again" + (f" (v{current.id} retired)" if current else ""))


@app.command()
@friendly_errors(*ERRORS)
def reject(
    version: int = typer.Argument(..., help="The version id to reject."),
    reason: str = typer.Option(..., help="Why (recorded with the version)."),
    url: str = typer.Option(None, help=URL_HELP),
) -> None:
    """Mark a candidate or retired version rejected, so it can never be promoted or rolled back to."""
    engine, sessions = _sessions(url)
    try:
        with sessions.begin() as session:
            registry.reject(session, version, reason)
    finally:
        engine.dispose()
    typer.echo(f"v{version} rejected: {reason}")
