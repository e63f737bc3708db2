"""Page guards and small shared widgets: a clear message instead of a traceback, then ``st.stop()``."""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from app import queries, services
from core.settings import Settings, SettingsError
from store.versions import LoadedVersion


def stop_with(kind: str, message: str) -> NoReturn:
    getattr(st, kind)(message)
    st.stop()
    raise RuntimeError("unreachable")  # st.stop() raises; this keeps type checkers honest


def settings_or_stop() -> Settings:
    try:
        return services.settings()
    except SettingsError as exc:
        stop_with("error", f"Invalid settings:\n\n```\n{exc}\n```")


def store_or_stop(config: Settings) -> services.Store:
    try:
        return services.store(config)
    except services.StoreNotReady as exc:
        stop_with("info", str(exc))


def models_or_stop(config: Settings) -> dict[str, LoadedVersion | None]:
    """The active models; stops with a message when neither a student nor a teacher is active."""
    try:
        models = services.active_models(config)
    except Exception as exc:  # noqa: BLE001 - a registry read failing must not show a traceback
        stop_with("error", f"Cannot read the model registry: {type(exc).__name__}: {exc}")
    if not any(models.values()):
        stop_with(
            "info",
            "No active model yet: the registry has no active student or teacher (or its artifact "
            "cannot be loaded). `kdrec demo` trains and activates both; so do `kdrec train teacher` and "
            "`kdrec train student`.",
        )
    return models


@st.cache_data(ttl=300, show_spinner=False)
def titles(url: str, items: int) -> dict[int, str]:
    """The catalogue's titles (re-read when the item count changes, else every 5 minutes)."""
    with services.read_sessions(url)() as session:
        return queries.titles(session)


@st.cache_data(ttl=30, show_spinner=False)
def user_ids(url: str, users: int) -> list[int]:
    with services.read_sessions(url)() as session:
        return queries.user_ids(session)


def version_label(loaded: LoadedVersion | None) -> str:
    return f"{loaded.kind} v{loaded.version_id}" if loaded is not None else "none"
