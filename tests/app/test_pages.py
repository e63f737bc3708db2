"""Every page rendered by Streamlit's AppTest on a tiny trained world, the clear messages of an
empty database, a missing database, no active model and a broker that is down, and the swap to
a newly promoted model."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch
from sqlalchemy import delete
from streamlit.testing.v1 import AppTest

from core.models.student import Student
from core.settings import ServeConfig, StudentConfig
from store.engine import create_engine_for, make_sessionmaker
from store.migrate import upgrade
from store.models import SkippedRecords
from store.skipped import Skip, record_skips
from store.versions import new_artifact_folder, publish
from tests.app.conftest import APP, point_at
from tests.app.world import World, build_world, empty_world

PAGES = ("pages/recommend.py", "pages/live.py", "pages/models.py")
TIMEOUT = 120


def run_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if page != PAGES[0]:
        at.switch_page(page)
    return at.run()


def texts(at: AppTest) -> str:
    parts = [el.value for kind in ("info", "warning", "error", "success") for el in getattr(at, kind)]
    return "\n".join(str(part) for part in parts)


def test_recommend_shows_student_and_teacher_lists_for_a_user(app_env: World) -> None:
    at = run_page("pages/recommend.py")
    assert not at.exception
    headers = [h.value for h in at.subheader]
    assert any(h.startswith("Student v") for h in headers) and any(h.startswith("Teacher v") for h in headers)
    lines = [md.value for md in at.markdown if re.match(r"\d+\\\. .+ — `-?\d+\.\d{3}`$", md.value)]
    assert len(lines) == 20  # 10 student + 10 teacher recommendations
    assert {m.label for m in at.metric} == {"Overlap@10", "Rank-biased overlap (p = 0.9)", "Kendall τ-b on the union"}
    assert len([c for c in at.caption if "ms for this request" in c.value]) == 2
    assert at.selectbox(key="user").value == 1


def test_live_and_models_pages_render(app_env: World) -> None:
    live = run_page("pages/live.py")
    assert not live.exception
    assert "Kafka broker" in texts(live) and "not reachable" in texts(live)  # no broker in this test
    assert [h.value for h in live.subheader][:1] == ["Consumer lag"]
    models = run_page("pages/models.py")
    assert not models.exception
    headers = [h.value for h in models.subheader]
    assert headers == [
        "Versions",
        "Teacher vs student quality per version",
        "Size and latency of the active models",
        "Job runs",
    ]
    versions = models.dataframe[0].value
    assert set(versions["kind"]) == {"teacher", "student"} and set(versions["status"]) == {"active"}
    sizes = models.dataframe[1].value
    assert list(sizes["model"].str.split().str[0]) == ["student", "teacher"]
    student, teacher = sizes["params"].tolist()
    assert 0 < student < teacher


def test_live_page_shows_skipped_record_batches(app_env: World) -> None:
    engine = create_engine_for(app_env.database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions.begin() as session:
            record_skips(
                session,
                [
                    Skip(
                        "kdrec.events",
                        2,
                        40,
                        59,
                        "record batch kdrec.events:2 offsets 40..59 "
                        "could not be decoded after 3 attempts (lz4 missing); skipped",
                    )
                ],
            )
        live = run_page("pages/live.py")
        assert not live.exception
        assert "Skipped record batches" in [h.value for h in live.subheader]
        assert "1 record batch(es) (20 offsets)" in texts(live)
        assert any("offsets" in df.value and list(df.value["offsets"]) == ["40..59"] for df in live.dataframe)
    finally:
        with sessions.begin() as session:
            session.execute(delete(SkippedRecords))
        engine.dispose()
    live = run_page("pages/live.py")
    assert "Skipped record batches" not in [h.value for h in live.subheader]
    assert any("No record batch skipped" in c.value for c in live.caption)


def test_a_click_with_the_broker_down_says_so(app_env: World) -> None:
    at = run_page("pages/recommend.py")
    at.button(key="click-student-1").click().run()
    assert not at.exception
    assert "is not reachable, so the click was not sent" in texts(at)


def test_an_anonymous_session_grows_with_each_click(app_env: World) -> None:
    at = run_page("pages/recommend.py")
    at.radio(key="mode").set_value("Anonymous session").run()
    assert "Choose a few movies" in texts(at)
    at.multiselect(key="anon_items").set_value([1, 2, 3]).run()
    assert not at.exception and at.session_state["anon_items"] == [1, 2, 3]
    at.button(key="click-teacher-1").click().run()
    assert not at.exception
    assert len(at.session_state["anon_items"]) == 4


@pytest.mark.parametrize("page", PAGES)
def test_missing_and_empty_databases_give_a_clear_message(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = empty_world(tmp_path / "empty")
    point_at(monkeypatch, world)
    at = run_page(page)
    assert not at.exception and "There is no database" in texts(at)
    upgrade(world.database_url)
    at = run_page(page)
    assert not at.exception and "is empty" in texts(at)


@pytest.fixture(scope="module")
def world_without_models(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("no-models"), models=False)


@pytest.mark.parametrize("page", PAGES)
def test_no_active_model_gives_a_clear_message(
    page: str, world_without_models: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, world_without_models)
    at = run_page(page)
    assert not at.exception
    if page == "pages/recommend.py":
        assert "No active model yet" in texts(at)
    elif page == "pages/models.py":
        assert "no model versions yet" in texts(at)
    else:  # the live page does not need a model
        assert next(h.value for h in at.subheader) == "Consumer lag"


def test_the_app_swaps_to_a_newly_promoted_student(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Models are loaded once per process and reloaded when the registry names another active version."""
    world = build_world(tmp_path / "swap", models=False)
    point_at(monkeypatch, world)
    engine = create_engine_for(world.database_url)
    sessions = make_sessionmaker(engine)

    def publish_student(seed: int) -> int:
        torch.manual_seed(seed)
        model = Student(StudentConfig(hidden=16, num_layers=1, num_heads=1, max_len=12), num_items=40)
        with sessions.begin() as session:
            folder = new_artifact_folder(world.artifact_dir, "student", f"s{seed}")
            return publish(session, model, folder, metrics={}, config={}, serve=ServeConfig(), promote=True).id

    try:
        first = publish_student(1)
        at = run_page("pages/recommend.py")
        assert not at.exception and f"Student v{first}" in [h.value for h in at.subheader]
        assert "No active teacher." in texts(at)
        second = publish_student(2)
        time.sleep(2.1)  # the registry is asked at most every 2 s
        at.run()
        assert not at.exception and f"Student v{second}" in [h.value for h in at.subheader]
    finally:
        engine.dispose()
