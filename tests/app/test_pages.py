"""Every page rendered by Streamlit's AppTest on a tiny trained world, and the clear messages
of an empty database, a missing database, no active model and a broker that is down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from store.migrate import upgrade
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
    assert headers == ["Versions", "Teacher vs student quality per version", "Size and latency of the active models",
                       "Job runs"]
    versions = models.dataframe[0].value
    assert set(versions["kind"]) == {"teacher", "student"} and set(versions["status"]) == {"active"}
    sizes = models.dataframe[1].value
    assert list(sizes["model"].str.split().str[0]) == ["student", "teacher"]
    student, teacher = sizes["params"].tolist()
    assert 0 < student < teacher


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
def test_missing_and_empty_databases_give_a_clear_message(page: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
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
def test_no_active_model_gives_a_clear_message(page: str, world_without_models: World,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(monkeypatch, world_without_models)
    at = run_page(page)
    assert not at.exception
    if page == "pages/recommend.py":
        assert "No active model yet" in texts(at)
    elif page == "pages/models.py":
        assert "no model versions yet" in texts(at)
    else:  # the live page does not need a model
        assert [h.value for h in at.subheader][0] == "Consumer lag"
