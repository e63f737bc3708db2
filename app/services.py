"""What every page shares, made once per process: settings, the database engine, the active models.

Streamlit reruns page scripts on every interaction; these functions hand back the same
objects each time (``st.cache_resource``). Settings are re-read only when a ``KDREC_``
variable changes (the cache key is the environment's fingerprint). Each model kind is an
``store.active.ActiveModel``: loaded once, and reloaded (model + FAISS index) when the
registry names another active version, at most one registry look-up every 2 seconds.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.settings import ENV_PREFIX, Settings, load_settings
from store.active import ActiveModel
from store.engine import create_engine_for, make_sessionmaker
from store.load import table_counts
from store.versions import LoadedVersion

if TYPE_CHECKING:
    from stream.text_serving import TextServing

MODEL_KINDS = ("student", "teacher")


class StoreNotReady(RuntimeError):
    """The database is missing, has no kdrec schema, or holds no data; the message says what to run."""


def env_fingerprint() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))


@st.cache_resource(show_spinner=False)
def _settings(fingerprint: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings()


def settings() -> Settings:
    """The process's settings (raises ``core.settings.SettingsError`` on invalid variables)."""
    return _settings(env_fingerprint())


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    return create_engine_for(url)


@st.cache_resource(show_spinner=False)
def read_sessions(url: str) -> sessionmaker[Session]:
    return make_sessionmaker(engine(url), read_only=True)


@dataclass(frozen=True)
class Store:
    """A ready store: its URL, a read-only session factory and the row counts at check time."""

    url: str
    sessions: sessionmaker[Session]
    counts: dict[str, int]


def _sqlite_file_missing(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not os.path.exists(parsed.database)


def store(config: Settings) -> Store:
    """The store, checked: raises ``StoreNotReady`` with what to do when it cannot serve the app."""
    url = config.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    if _sqlite_file_missing(url):
        raise StoreNotReady(
            f"There is no database at {shown} yet. Run `kdrec demo` (or `kdrec db upgrade` "
            "and `kdrec db load`) to create it and load a dataset."
        )
    try:
        bind = engine(url)
        if not inspect(bind).has_table("events"):
            raise StoreNotReady(
                f"The database at {shown} has no kdrec schema yet. Run `kdrec demo` "
                "(or `kdrec db upgrade` and `kdrec db load`)."
            )
        sessions = read_sessions(url)
        with sessions() as session:
            counts = table_counts(session)
    except StoreNotReady:
        raise
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot read the store"
        raise StoreNotReady(
            f"Cannot read the database at {shown}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"
        ) from None
    if counts["items"] == 0:
        raise StoreNotReady(
            f"The database at {shown} is empty: no catalogue loaded. Run `kdrec demo` "
            "(or `kdrec db load --dataset ml-100k`)."
        )
    return Store(url, sessions, counts)


def single_thread_inference() -> None:
    """One intra-op thread for torch and FAISS in the calling script thread.

    The app serves one session at a time; a single query gains nothing from more threads and,
    on a machine busy with the consumer and training jobs, spinning OpenMP/torch workers make it
    far slower (measured on 2 loaded cores: teacher request 306 ms with the default threads,
    17 ms with one; student 25 ms vs 1.6 ms). torch's setting is per process, FAISS's (OpenMP)
    per thread, and Streamlit runs each script run in a new thread: so this runs on every call.
    """
    from core.index.threads import serving_threads

    serving_threads(1)


@st.cache_resource(show_spinner=False)
def _active_model(url: str, kind: str, serve_json: str) -> ActiveModel:
    from core.settings import ServeConfig

    return ActiveModel(read_sessions(url), ServeConfig.model_validate_json(serve_json), kind=kind, check_every=2.0)


@st.cache_resource(show_spinner=False)
def _text_serving(url: str, serve_json: str, checkpoint: str | None) -> tuple[TextServing, threading.Lock]:
    from core.text.live import TextEncoder
    from stream.text_serving import TextServing

    active = _active_model(url, "student", serve_json)
    return TextServing(active, read_sessions(url), TextEncoder(checkpoint)), threading.Lock()


def active_models(config: Settings) -> dict[str, LoadedVersion | None]:
    """The active student and teacher (loaded once, swapped when the registry changes). The
    student also serves, from their text, catalogue items it never learnt (``stream.text_serving``,
    as the consumer does), so an item added a moment ago can be in the app's lists too."""
    single_thread_inference()
    serve = config.serve.model_dump_json()
    out: dict[str, LoadedVersion | None] = {}
    for kind in MODEL_KINDS:
        out[kind] = _active_model(config.database_url, kind, serve).current()
    if out["student"] is not None:
        serving, lock = _text_serving(config.database_url, serve, config.teacher.checkpoint)
        with lock:  # one sync at a time: Streamlit runs each session's script in its own thread
            serving.sync_if_due()
    return out


def learnt_items(loaded: LoadedVersion | None) -> int | None:
    """How many items the student learnt; ids above it are "new (from text)"."""
    return loaded.model.num_items if loaded is not None else None
