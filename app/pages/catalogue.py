"""Catalogue: add an item (published to the items topic) and see the newest items, with the ones
the active student serves from their text alone marked "new (from text)"."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import items, queries, services, ui

NEWEST = 20
NEW_MARK = "new (from text)"

config = ui.settings_or_stop()
store = ui.store_or_stop(config)
models = ui.models_or_stop(config)
learnt = services.learnt_items(models["student"])
state = st.session_state

st.title("Catalogue")
st.caption(
    f"{store.counts['items']:,} items. A new item is published to `{config.kafka.items_topic}`; the consumer stores it "
    "and, reading its text with the language model, adds it to the live index at once: it can be recommended before "
    "anyone clicks it. The next scheduled refit learns it from clicks like any other item."
)

with st.form("add-item", clear_on_submit=True):
    st.subheader("Add an item")
    title = st.text_input("Title", key="new-title", placeholder="e.g. Wooden railway set, 40 pieces")
    more = st.text_area(
        "More text fields, one per line as `name: value`",
        key="new-fields",
        placeholder="brand: Brio\ncategory: Toys & Games > Trains",
    )
    submitted = st.form_submit_button("Publish")
if submitted:
    try:
        fields = items.parse_fields(more)
        with st.spinner("Publishing the item and waiting for the consumer ..."):
            outcome = items.publish_item(config.kafka, store.sessions, title, fields)
        state["published"] = outcome
    except items.ItemError as exc:
        state.pop("published", None)
        st.error(str(exc))
published = state.get("published")
if published is not None:
    if published.stored:
        st.success(
            f"Item {published.item_id} is in the catalogue ({published.waited_s:.1f} s after publishing): "
            "recommendable from its text now."
        )
    else:
        st.warning(
            f"Item {published.source_id!r} was published but the consumer has not stored it yet: is `kdrec consume` "
            "(or `kdrec demo`) running?"
        )

st.subheader("Newest items")
with store.sessions() as session:
    rows = queries.newest_items(session, NEWEST)
if learnt is None:
    st.info("No active student: items are served from their text once one is trained.")
frame = pd.DataFrame(
    [
        {
            "item": row.item_id,
            "title": row.title,
            "text fields": "; ".join(f"{name}: {value}" for name, value in row.fields or () if value),
            "served": NEW_MARK if learnt is None or row.item_id > learnt else "learnt from clicks",
        }
        for row in rows
    ]
)
st.dataframe(frame, hide_index=True, width="stretch")
