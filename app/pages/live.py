"""Live: what the stream is doing now — events, recommendation updates, throughput, latency, lag."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, queries, ui
from app.lag import LagUnavailable, consumer_lag

WINDOWS = {"1 minute": 1.0, "5 minutes": 5.0, "15 minutes": 15.0, "1 hour": 60.0}

config = ui.settings_or_stop()
store = ui.store_or_stop(config)

st.title("Live")
left, right = st.columns([2, 1], vertical_alignment="bottom")
window_name = left.radio("Window", list(WINDOWS), index=1, horizontal=True, key="live_window")
auto = right.toggle("Refresh every 3 s", value=True, key="live_auto")


def show_lag() -> None:
    st.subheader("Consumer lag")
    try:
        rows = consumer_lag(config.kafka, timeout_s=2.0)
    except LagUnavailable as exc:
        st.warning(f"{exc}. The lag appears once the broker is up (`kdrec demo` starts one).")
        return
    total = sum(row.lag for row in rows)
    st.caption(
        f"group `{config.kafka.consumer_group}` on `{config.kafka.events_topic}`: {total:,} events not yet "
        "committed (log-end offset − committed offset, per partition)"
    )
    st.dataframe(
        pd.DataFrame(
            [{"partition": r.partition, "committed": r.committed, "log end": r.end, "lag": r.lag} for r in rows]
        ),
        hide_index=True,
        width="stretch",
    )


def show_skipped() -> None:
    with store.sessions() as session:
        batches, offsets, frame = queries.skipped_batches(session)
    if not batches:
        st.caption("No record batch skipped: every batch on the events topic was decoded.")
        return
    st.subheader("Skipped record batches")
    st.error(
        f"{batches:,} record batch(es) ({offsets:,} offsets) could not be decoded and were skipped after "
        f"their retries. Each went to the dead-letter topic `{config.kafka.dlq_topic}` with its raw bytes "
        "and reason (code `undecodable_batch`)."
    )
    st.dataframe(frame, hide_index=True, width="stretch")


@st.fragment(run_every=3.0 if auto else None)
def live() -> None:
    names = ui.titles(store.url, store.counts["items"])
    since = queries.window_start(WINDOWS[window_name])
    with store.sessions() as session:
        rate = queries.event_rate(session, since)
        latency, historic = queries.recommendation_latency(session, since)
        events = queries.recent_events(session, names)
        recs = queries.recent_recommendations(session, names)
    last_10s = rate[rate["second"] >= queries.window_start(10 / 60)]["events"].sum() / 10 if not rate.empty else 0.0
    a, b, c, d = st.columns(4)
    a.metric("Events in window", f"{int(rate['events'].sum()) if not rate.empty else 0:,}")
    b.metric("Events / s (last 10 s)", f"{last_10s:.1f}")
    c.metric("Recommendation updates in window", f"{len(latency) + historic:,}")
    c50 = latency["latency_ms"].median() if not latency.empty else None
    d.metric("Median event → recs", "n/a" if c50 is None else f"{c50:.0f} ms")
    chart_left, chart_right = st.columns(2)
    with chart_left:
        if rate.empty:
            st.info(
                "No events ingested in this window. `kdrec demo` publishes live traffic; so does a click on "
                "the Recommend page."
            )
        else:
            st.altair_chart(charts.events_per_second(rate), width="stretch", height=charts.HEIGHT + 60)
    with chart_right:
        if latency.empty:
            st.info("No recommendations written for live events in this window (is the consumer running?).")
        else:
            st.altair_chart(charts.latency(latency), width="stretch", height=charts.HEIGHT + 60)
        if historic:
            st.caption(
                f"{historic:,} recommendations triggered by replayed historic events (event time more "
                "than an hour before) are left out of the latency chart."
            )
    show_lag()
    show_skipped()
    ev, rc = st.columns(2)
    with ev:
        st.subheader("Latest events")
        if events.empty:
            st.info("No events yet.")
        else:
            st.dataframe(events, hide_index=True, width="stretch")
    with rc:
        st.subheader("Latest recommendation updates")
        if recs.empty:
            st.info("No recommendations written yet.")
        else:
            st.dataframe(recs, hide_index=True, width="stretch")


live()
