"""The Catalogue page, and the app's student serving an item it never learnt from its text."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import services
from core.data.dataset import Item
from core.settings import load_settings
from store.catalogue import upsert_item
from store.engine import create_engine_for, make_sessionmaker
from tests.app.conftest import APP, point_at
from tests.app.world import World, build_world

TIMEOUT = 120


def catalogue_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("pages/catalogue.py")
    return at.run()


@pytest.fixture(scope="module")
def own_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """This module's own world. With the session's shared one, the live demo tests after this
    module hung (the demo's first consumer processed nothing for 60 s) and the page tests found
    the world's SQLite file "malformed", twice; the cause is not found yet (this module only reads
    the shared world, and copies its file for one test)."""
    return build_world(tmp_path_factory.mktemp("catalogue-world"))


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, own_world: World) -> World:
    point_at(monkeypatch, own_world)
    return own_world


@pytest.fixture
def world_with_new_item(tmp_path: Path, own_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """A copy of this module's world database (models shared, read-only) holding item 41, never clicked."""
    database = tmp_path / "kdrec.db"
    shutil.copy(own_world.database_url.removeprefix("sqlite:///"), database)
    copy = replace(own_world, database_url=f"sqlite:///{database}")
    engine = create_engine_for(copy.database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            assert upsert_item(session, Item(41, "Toy Story 2", 1999, ("Animation",))) == "inserted"
    finally:
        engine.dispose()
    point_at(monkeypatch, copy)
    return copy


def test_the_page_lists_the_newest_items_and_the_form(app_env: World) -> None:
    at = catalogue_page()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["Add an item", "Newest items"]
    frame = at.dataframe[0].value
    assert list(frame["item"])[:3] == [40, 39, 38] and set(frame["served"]) == {"learnt from clicks"}


def test_publishing_without_a_broker_says_so(app_env: World) -> None:
    at = catalogue_page()
    at.text_input(key="new-title").input("Wooden railway")
    at.text_area(key="new-fields").input("brand: Brio")
    at.button[0].click().run()
    assert not at.exception
    assert any("not reachable" in str(error.value) for error in at.error)


def test_bad_fields_are_explained(app_env: World) -> None:
    at = catalogue_page()
    at.text_input(key="new-title").input("Kite")
    at.text_area(key="new-fields").input("just some words")
    at.button[0].click().run()
    assert any("is not `name: value`" in str(error.value) for error in at.error)


def test_an_item_nobody_clicked_is_marked_and_served_from_its_text(world_with_new_item: World) -> None:
    at = catalogue_page()
    assert not at.exception
    frame = at.dataframe[0].value
    assert int(frame["item"].iloc[0]) == 41 and frame["served"].iloc[0] == "new (from text)"
    student = services.active_models(load_settings())["student"]
    assert student is not None and student.text_map is not None
    assert student.model.num_items == 40 and student.recommender.index.num_items == 41
    assert 41 in student.text_items
    ranked = student.recommend([[1, 2, 3]], k=41).row(0)
    assert 41 in [item for item, _ in ranked]  # rankable like any item (the 38 unseen ones, all returned)
