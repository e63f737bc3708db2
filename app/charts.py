"""Altair charts of the pages (built from DataFrames the queries return)."""

from __future__ import annotations

import altair as alt
import pandas as pd

QUALITY = ("HR@10", "NDCG@10", "MRR@10")
HEIGHT = 240
SIZE_MEASURES = ("params", "non-embedding params", "artifact MB", "latency ms (now)")


def events_per_second(frame: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(frame, title="Events ingested per second")
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X("second:T", title="time (UTC)", axis=alt.Axis(format="%H:%M:%S"), scale=alt.Scale(type="utc")),
            y=alt.Y("events:Q", title="events / s"),
            tooltip=[alt.Tooltip("second:T", format="%H:%M:%S"), "events:Q"],
        )
        .properties(height=HEIGHT)
    )


def latency(frame: pd.DataFrame) -> alt.LayerChart | alt.FacetChart:
    """Each recommendation's event -> recommendations latency, with the per-10-second median."""
    points = (
        alt.Chart(frame)
        .mark_circle(size=18, opacity=0.35, color="#f58518")
        .encode(
            x=alt.X(
                "created_at:T", title="written at (UTC)", axis=alt.Axis(format="%H:%M:%S"), scale=alt.Scale(type="utc")
            ),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            tooltip=[alt.Tooltip("created_at:T", format="%H:%M:%S"), "latency_ms:Q"],
        )
    )
    buckets = frame.set_index("created_at")["latency_ms"].resample("10s").median().dropna().rename("p50").reset_index()
    median = (
        alt.Chart(buckets)
        .mark_line(color="#e45756", strokeWidth=2, point=alt.OverlayMarkDef(color="#e45756"))
        .encode(
            x=alt.X("created_at:T", scale=alt.Scale(type="utc")),
            y="p50:Q",
            tooltip=[alt.Tooltip("created_at:T", format="%H:%M:%S"), alt.Tooltip("p50:Q", format=".0f")],
        )
    )
    return alt.layer(points, median, title="Event → recommendations (dots; line: 10-s median)").properties(
        height=HEIGHT
    )


def quality(frame: pd.DataFrame) -> alt.Chart:
    """Grouped bars: one group per version, one bar per metric; colour = metric."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("metric:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
            xOffset=alt.XOffset("metric:N"),
            y=alt.Y("value:Q", title="score (full ranking)"),
            color=alt.Color("metric:N", sort=list(QUALITY)),
            column=alt.Column("version:N", title=None, sort=alt.SortField("order")),
            tooltip=["version:N", "metric:N", alt.Tooltip("value:Q", format=".4f"), "set:N"],
        )
        .properties(width=70, height=220)
    )


def sizes(frame: pd.DataFrame) -> alt.FacetChart:
    """One small bar chart per measure (``measure``, ``model``, ``kind``, ``value`` rows), own x scales."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=None),
            y=alt.Y("model:N", title=None),
            color=alt.Color(
                "kind:N", legend=None, scale=alt.Scale(domain=["student", "teacher"], range=["#54a24b", "#4c78a8"])
            ),
            tooltip=["measure:N", "model:N", alt.Tooltip("value:Q", format=",.2f")],
        )
        .properties(width=220, height=60)
        .facet(
            facet=alt.Facet(
                "measure:N",
                title=None,
                sort=list(SIZE_MEASURES),
                header=alt.Header(labelFontSize=13, labelFontWeight="bold"),
            ),
            columns=4,
        )
        .resolve_scale(x="independent")
    )
