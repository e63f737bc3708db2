"""kdrec's Streamlit app: ``streamlit run app/main.py``.

Four pages (``st.navigation``): Recommend (a user's or an anonymous session's student and
teacher top 10, clicks published to Kafka), Live (events, recommendation updates, throughput,
latency, consumer lag), Catalogue (add an item, the newest items) and Models (versions,
quality, size and latency, job runs). Shared resources (settings, database engine, the active
models) live in ``app.services``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="kdrec", page_icon=":material/movie:", layout="wide")
page = st.navigation(
    [
        st.Page(PAGES / "recommend.py", title="Recommend", icon=":material/recommend:", default=True),
        st.Page(PAGES / "live.py", title="Live", icon=":material/monitoring:"),
        st.Page(PAGES / "catalogue.py", title="Catalogue", icon=":material/inventory_2:"),
        st.Page(PAGES / "models.py", title="Models", icon=":material/model_training:"),
    ]
)
st.sidebar.caption(
    "kdrec: a pre-trained LM teacher distilled into a small student, served live from Kafka through SQL and FAISS."
)
page.run()
