"""Models: the registry's versions, teacher vs student quality, size and latency, and the job runs."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from app import charts, queries, services, sizes, ui
from store.sequences import get_sequences
from store.versions import LoadedVersion

config = ui.settings_or_stop()
store = ui.store_or_stop(config)


def test_metrics(metrics: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """``(source, HR/NDCG/MRR@10)`` of a version: its ``test`` block (dataset leave-one-out, written by
    ``kdrec train`` and ``kdrec demo``), else ``holdout`` (the store's leave-one-out, written by the jobs)."""
    for source in ("test", "holdout"):
        block = metrics.get(source)
        if isinstance(block, dict) and any(key in block for key in charts.QUALITY):
            return source, {key: float(block[key]) for key in charts.QUALITY if isinstance(block.get(key), int | float)}
    return "", {}


@st.cache_data(show_spinner=False)
def artifact_size(folder: str) -> sizes.ArtifactSize | None:
    return sizes.artifact_size(folder)


@st.cache_data(show_spinner="Measuring serving latency ...", max_entries=16)
def measured_latency(version_id: int, _loaded: LoadedVersion, url: str) -> float:
    with store.sessions() as session:
        users = ui.user_ids(url, store.counts["users"])[:200]
        histories = [seq for seq in get_sequences(session, users).values() if seq]
    return sizes.serving_latency_ms(_loaded, histories)


st.title("Models")
with store.sessions() as session:
    versions = queries.versions(session)
if not versions:
    ui.stop_with(
        "info",
        "The registry has no model versions yet. `kdrec demo` trains a teacher and a student; "
        "so do `kdrec train teacher` and `kdrec train student`.",
    )

rows: list[dict[str, Any]] = []
quality: list[dict[str, Any]] = []
for order, v in enumerate(reversed(versions)):
    source, scores = test_metrics(v.metrics or {})
    size = artifact_size(v.artifact_path)
    rows.append(
        {
            "version": v.id,
            "kind": v.kind,
            "status": v.status,
            "teacher": v.parent_id,
            "created (UTC)": v.created_at,
            "activated (UTC)": v.activated_at,
            **{k: scores.get(k) for k in charts.QUALITY},
            "scored on": source or None,
            "params": size.params if size else None,
            "MB": round(size.megabytes, 2) if size else None,
            "note": v.note,
        }
    )
    quality.extend(
        {"version": f"v{v.id} {v.kind}", "order": order, "metric": k, "value": val, "set": source}
        for k, val in scores.items()
    )
st.subheader("Versions")
st.dataframe(pd.DataFrame(rows[::-1]), hide_index=True, width="stretch")

st.subheader("Teacher vs student quality per version")
if quality:
    st.altair_chart(charts.quality(pd.DataFrame(quality)))
    st.caption(
        "Full ranking over all items, seen items removed, leave-one-out targets: `test` = the dataset's last "
        "items (versions from `kdrec demo` / `kdrec train`), `holdout` = the store's last items at refit time "
        "(versions from the scheduled jobs)."
    )
else:
    st.info("No version has recorded test metrics (HR@10, NDCG@10, MRR@10) yet.")

st.subheader("Size and latency of the active models")
try:
    active = services.active_models(config)
except Exception as exc:  # noqa: BLE001 - a registry read failing must not show a traceback
    active = {}
    st.error(f"Cannot load the active models: {type(exc).__name__}: {exc}")
table = []
for kind, loaded in active.items():
    if loaded is None:
        continue
    size = artifact_size(str(loaded.artifact_path))
    ms = measured_latency(loaded.version_id, loaded, store.url)
    recorded = loaded.metrics.get("latency_ms")
    table.append(
        {
            "model": f"{kind} v{loaded.version_id}",
            "kind": kind,
            "params": size.params if size else math.nan,
            "non-embedding params": size.non_embedding_params if size else math.nan,
            "artifact MB": size.megabytes if size else math.nan,
            "latency ms (now)": ms,
            "latency ms (at training)": recorded,
        }
    )
if not table:
    st.info("No active model to measure.")
else:
    frame = pd.DataFrame(table)
    st.dataframe(
        frame.drop(columns=["kind"]),
        hide_index=True,
        width="stretch",
        column_config={
            "params": st.column_config.NumberColumn(format="localized"),
            "non-embedding params": st.column_config.NumberColumn(format="localized"),
            "artifact MB": st.column_config.NumberColumn(format="%.2f"),
            "latency ms (now)": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    long = frame.melt(id_vars=["model", "kind"], value_vars=list(charts.SIZE_MEASURES), var_name="measure")
    st.altair_chart(charts.sizes(long.dropna()))
    st.caption(
        "Latency: median of 30 single requests (encode one stored user session, FAISS top-10 with seen items "
        "excluded) in this app process; at training: as recorded in the version's metrics."
    )

st.subheader("Job runs")
with store.sessions() as session:
    if not queries.has_job_runs(session):
        st.info(
            "This database has no job-runs table yet (run `kdrec db upgrade`); the scheduled refits record "
            "their decisions there."
        )
    else:
        runs = queries.job_run_frame(session)
        if runs.empty:
            st.info(
                "No job runs yet: the scheduler (`kdrec scheduler`, started by `kdrec demo`) records each refit "
                "here with its decision (promoted / rejected / failed) and the reason."
            )
        else:
            st.dataframe(runs, hide_index=True, width="stretch")
