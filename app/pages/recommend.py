"""Recommend: a user's (or an anonymous session's) history, the student's and the teacher's top 10
side by side with their agreement and latency; clicking a recommendation publishes a real click."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import streamlit as st

from app import clicks, services, ui
from app.compare import kendall_tau_union, overlap_at_k, rank_biased_overlap
from store.sequences import get_sequence
from store.versions import LoadedVersion

K = 10
HISTORY_SHOWN = 10
CLICK_TIMEOUT_S = 15.0

config = ui.settings_or_stop()
store = ui.store_or_stop(config)
models = ui.models_or_stop(config)
names = ui.titles(store.url, store.counts["items"])
learnt = services.learnt_items(models["student"])
state = st.session_state


def title(item: int) -> str:
    name = names.get(item, f"item {item}")
    return f"{name} · new (from text)" if learnt is not None and item > learnt else name


def when(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def on_click(user: int | None, item: int) -> None:
    """Button callback (runs before the rerun): queue a user's click, or extend the anonymous session."""
    if user is None:
        state["anon_items"] = [*state.get("anon_items", []), item]
    else:
        state["pending_click"] = (user, item)


def process_pending_click() -> None:
    pending = state.pop("pending_click", None)
    if pending is None:
        return
    user, item = pending
    with st.spinner(f"Publishing a click on {title(item)} and waiting for the consumer ..."):
        try:
            outcome = clicks.click_and_wait(config.kafka, store.sessions, user, item, CLICK_TIMEOUT_S)
            state["last_click"] = {"user": user, "item": item, "outcome": outcome}
        except clicks.ClickError as exc:
            state["last_click"] = {"user": user, "item": item, "error": str(exc)}


def show_last_click(user: int) -> None:
    last = state.get("last_click")
    if not last or last["user"] != user:
        return
    with st.container(key="click-outcome", border=True):
        if "error" in last:
            st.error(last["error"])
            return
        outcome: clicks.ClickOutcome = last["outcome"]
        rec = outcome.recommendation
        if rec is None:
            st.warning(
                f"You clicked **{title(last['item'])}** (event `{outcome.event.event_id}` is on the events "
                f"topic), but no consumer wrote recommendations within {CLICK_TIMEOUT_S:.0f} s. Is "
                "`kdrec consume` running? (`kdrec demo` starts one.)"
            )
            return
        st.success(
            f"You clicked **{title(last['item'])}**. The consumer wrote new recommendations for user {user} "
            f"{outcome.latency_ms} ms after the click (student v{rec.model_version_id}):"
        )
        st.markdown(
            "\n".join(
                f"{rank}. {title(item)} — `{score:.3f}`"
                for rank, (item, score) in enumerate(zip(rec.items, rec.scores, strict=False), start=1)
            )
        )


def pick_user() -> int:
    users = ui.user_ids(store.url, store.counts["users"])
    if not users:
        ui.stop_with(
            "info", "No user has a stored history yet. Load a dataset (`kdrec demo`) or build an anonymous session."
        )
    wanted = st.query_params.get("user")
    index = users.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in users else 0
    return int(st.selectbox("User id (type to search)", users, index=index, key="user"))


def recommend(loaded: LoadedVersion, history: list[int]) -> tuple[list[tuple[int, float]], float]:
    started = time.perf_counter()
    result = loaded.recommend([history], K)
    return result.row(0), (time.perf_counter() - started) * 1000


def show_list(
    kind: str, loaded: LoadedVersion | None, ranked: list[tuple[int, float]], ms: float, user: int | None
) -> None:
    if loaded is None:
        st.warning(f"No active {kind}.")
        return
    st.subheader(f"{kind.capitalize()} v{loaded.version_id}")
    st.caption(f"{ms:.1f} ms for this request (encode the session + FAISS top-{K})")
    for rank, (item, score) in enumerate(ranked, start=1):
        row = st.container(key=f"rec-{kind}-{rank}")
        left, right = row.columns([6, 1], vertical_alignment="center")
        left.markdown(f"{rank}\\. {title(item)} — `{score:.3f}`")  # escaped: a paragraph, not a list
        right.button("▶", key=f"click-{kind}-{rank}", help=f"Click {title(item)}", on_click=on_click, args=(user, item))


st.title("Recommend")
mode = st.radio("Session", ["User", "Anonymous session"], horizontal=True, key="mode")
if mode == "User":
    process_pending_click()
    chosen = pick_user()
    user: int | None = chosen
    with store.sessions() as session:
        history, stamps = get_sequence(session, chosen)
else:
    user = None
    st.multiselect(
        "Movies in this session, in the order watched",
        options=sorted(names),
        key="anon_items",
        format_func=title,
        placeholder="Type a title",
    )
    history = list(state.get("anon_items", []))
    if not history:
        ui.stop_with("info", "Choose a few movies to start an anonymous session; recommendations follow each pick.")
    stamps = []

with st.expander(f"History: {len(history)} items, most recent first", expanded=True):
    times: list[int | None] = list(stamps) if stamps else [None] * len(history)
    recent = list(zip(history, times, strict=False))[-HISTORY_SHOWN:]
    st.markdown(
        "\n".join(f"- {title(item)}" + (f" · {when(ts)}" if ts is not None else "") for item, ts in reversed(recent))
    )
    if len(history) > HISTORY_SHOWN:
        st.caption(f"... and {len(history) - HISTORY_SHOWN} older items")

if user is not None:
    show_last_click(user)

results = {kind: recommend(loaded, history) if loaded is not None else ([], 0.0) for kind, loaded in models.items()}
student, teacher = results["student"][0], results["teacher"][0]
if student and teacher:
    ids_s, ids_t = [i for i, _ in student], [i for i, _ in teacher]
    a, b, c = st.columns(3)
    a.metric(f"Overlap@{K}", f"{overlap_at_k(ids_s, ids_t, K):.0%}")
    b.metric("Rank-biased overlap (p = 0.9)", f"{rank_biased_overlap(ids_s, ids_t, 0.9):.3f}")
    tau = kendall_tau_union(ids_s, ids_t)
    c.metric("Kendall τ-b on the union", "n/a" if tau is None else f"{tau:+.2f}")
    st.caption(
        "RBO: extrapolated rank-biased overlap of the two top-10 lists (1 = identical, 0 = disjoint, top "
        "ranks weigh most). Kendall τ-b: over the union of both lists, an item missing from a list tied "
        "after all of its items."
    )
left, right = st.columns(2, gap="large")
with left:
    show_list("student", models["student"], *results["student"], user)
with right:
    show_list("teacher", models["teacher"], *results["teacher"], user)
if user is not None:
    st.caption(
        "▶ publishes a real click for this user to Kafka; the consumer stores it and writes fresh "
        "recommendations, shown above the lists."
    )
else:
    st.caption("▶ adds the movie to this anonymous session (nothing is published: the session has no user).")
