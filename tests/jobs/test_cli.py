"""``kdrec jobs``, ``kdrec models`` and ``kdrec scheduler`` on real databases; ``run-now`` in another process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from core.models.student import Student
from core.settings import ServeConfig, Settings, StudentConfig
from store import lease
from store.engine import make_sessionmaker
from store.versions import new_artifact_folder, publish
from tests.jobs.conftest import tiny_settings

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _invoke(*args: str, url: str) -> Any:
    return runner.invoke(app, [*args, "--url", url], catch_exceptions=False)


def test_every_command_has_help() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and all(name in top.output for name in ("scheduler", "jobs", "models"))
    for command in (
        ["scheduler"],
        ["jobs", "run-now"],
        ["jobs", "runs"],
        ["jobs", "show"],
        ["jobs", "lease"],
        ["models", "list"],
        ["models", "promote"],
        ["models", "rollback"],
        ["models", "reject"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, command


def test_models_list_promote_rollback_reject(engine: Engine, database_url: str, tmp_path: Path) -> None:
    sessions = make_sessionmaker(engine)
    ids = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = Student(StudentConfig(hidden=8, num_layers=1, num_heads=1, max_len=4), num_items=12)
        with sessions.begin() as session:
            ids.append(
                publish(
                    session,
                    model,
                    new_artifact_folder(tmp_path, "student", f"s{seed}"),
                    metrics={"holdout": {"NDCG@10": 0.1 * seed}},
                    config={},
                    serve=ServeConfig(),
                ).id
            )
    first, second = ids
    assert "is active" in _invoke("models", "promote", str(first), url=database_url).output
    promoted = _invoke("models", "promote", str(second), url=database_url)
    assert promoted.exit_code == 0 and f"student v{second} is active (replaced v{first})" in promoted.output
    listing = _invoke("models", "list", url=database_url).output
    assert (
        f"{second:>4} student  active" in listing and "0.2000" in listing and f"replaced by version {second}" in listing
    )
    back = _invoke("models", "rollback", "--kind", "student", url=database_url)
    assert back.exit_code == 0 and f"student v{first} is active again (v{second} retired)" in back.output
    rejected = _invoke("models", "reject", str(second), "--reason", "bad clicks", url=database_url)
    assert rejected.exit_code == 0
    refused = _invoke("models", "promote", str(second), url=database_url)
    assert refused.exit_code == 1 and "rejected and cannot be promoted" in refused.output
    assert _invoke("models", "promote", "999", url=database_url).exit_code == 1
    assert "no retired teacher" in _invoke("models", "rollback", "--kind", "teacher", url=database_url).output
    listing = _invoke("models", "list", "--status", "rejected", url=database_url).output
    assert "bad clicks" in listing and f"{first:>4} student" not in listing


def _env(settings: Settings) -> dict[str, str]:
    """The settings as KDREC_* variables (unset fields keep their defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDREC_")}
    for key, value in settings.model_dump(exclude_none=True, mode="json").items():
        if isinstance(value, dict):
            env.update(
                {
                    f"KDREC_{key.upper()}__{k.upper()}": str(v)
                    for k, v in value.items()
                    if not isinstance(v, (dict, list))
                }
            )
        elif not isinstance(value, list):
            env[f"KDREC_{key.upper()}"] = str(value)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_run_now_skips_while_another_process_holds_the_lease_then_runs(
    store_engine: Engine, database_url: str, tmp_path: Path, text_cache: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "text-encodings").symlink_to(text_cache, target_is_directory=True)
    settings = tiny_settings(database_url, artifacts)
    sessions = make_sessionmaker(store_engine)
    with sessions.begin() as session:  # this test process is "another machine" running the pipeline
        assert lease.try_acquire(session, "refit", "elsewhere:1:busy", ttl_seconds=300)
    other = subprocess.run(
        [sys.executable, "-m", "cli.main", "jobs", "run-now", "--threads", "1"],
        cwd=REPO,
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 3, other.stdout + other.stderr
    assert "skipped" in other.stdout and "held by elsewhere:1:busy" in other.stdout
    assert "lease 'refit' held by elsewhere:1:busy" in _invoke("jobs", "lease", url=database_url).output
    with sessions.begin() as session:
        assert lease.release(session, "refit", "elsewhere:1:busy")

    env = _env(settings)
    result = runner.invoke(app, ["jobs", "run-now", "--no-progress"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "succeeded, promoted" in result.output and "candidate v" in result.output and "NDCG@10" in result.output

    runs = _invoke("jobs", "runs", url=database_url)
    lines = runs.output.splitlines()
    assert runs.exit_code == 0 and len(lines) == 3
    assert "succeeded  promoted" in runs.output and "skipped" in runs.output and "held by" in runs.output
    run_id = next(line.split()[0] for line in lines[1:] if "promoted" in line)
    shown = json.loads(_invoke("jobs", "show", run_id, url=database_url).output)
    assert shown["decision"] == "promoted" and "candidate" in shown["metrics"]
    assert set(shown["details"]["seconds"]) >= {"load", "teacher", "teacher_scores", "student", "index", "evaluate"}
    assert "is free" in _invoke("jobs", "lease", url=database_url).output
