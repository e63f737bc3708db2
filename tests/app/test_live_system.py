"""The main job's live system end to end: ``kdrec demo`` on embedded defaults (temp store, free
ports) serves the app, turns clicks into recommendations through the real broker and consumer,
a headless browser clicks a recommendation and sees the list change, and Ctrl-C leaves no
process behind; a consumer killed with SIGKILL is restarted and recommendations resume."""

from __future__ import annotations

import logging
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app import queries
from store.engine import create_engine_for, make_sessionmaker
from store.models import Event, Recommendation
from store.sequences import get_sequence
from stream.net import port_open
from stream.producer import publish_click
from tests.app import browser
from tests.app.live_demo import ROOT, LiveDemo, processes_with, start_demo
from tests.app.world import World

pytestmark = [pytest.mark.slow, pytest.mark.kafka]
log = logging.getLogger(__name__)
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def live(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDemo]:
    demo = start_demo(world, tmp_path_factory.mktemp("demo"))
    yield demo
    demo.stop()


def _unseen_item(sessions, user: int) -> int:
    with sessions() as session:
        items, _ = get_sequence(session, user)
    return next(item for item in range(1, 41) if item not in items)


def test_the_demo_serves_the_app_and_clicks_become_recommendations(live: LiveDemo) -> None:
    with urllib.request.urlopen(live.url, timeout=10) as response:
        assert response.status == 200
    output = live.output()
    for part in ("broker: embedded", "consumer: pid", "scheduler: pid", "traffic: pid", "app: pid"):
        assert part in output
    engine = create_engine_for(live.world.database_url)
    sessions = make_sessionmaker(engine, read_only=True)
    try:
        with sessions() as session:
            before = session.scalar(select(func.max(Recommendation.id))) or 0
        clicks = {user: publish_click(live.kafka, user, _unseen_item(sessions, user)) for user in (5, 6, 7)}
        deadline = time.monotonic() + 60
        answered: dict[int, Recommendation] = {}
        while len(answered) < len(clicks) and time.monotonic() < deadline:
            with sessions() as session:
                for user, click in clicks.items():
                    # the click's own, or one triggered by a later event of the same user in the same batch
                    found = queries.recommendation_after(session, user, before, click.ts)
                    if found is not None:
                        answered[user] = found
            time.sleep(0.2)
        assert len(answered) == len(clicks), live.output()[-3000:]
        with sessions() as session:
            stored = set(
                session.scalars(select(Event.event_id).where(Event.event_id.in_([c.event_id for c in clicks.values()])))
            )
        assert stored == {c.event_id for c in clicks.values()}
        for user, click in clicks.items():
            rec = answered[user]
            assert len(rec.items) == 10 and click.item_id not in rec.items  # the clicked item is now seen
        with sessions() as session:  # the live traffic flows too (fresh event ids, not the loaded ones)
            live_events = session.scalar(select(func.count()).select_from(Event).where(Event.event_id.like("live-%")))
        assert live_events > 0
    finally:
        engine.dispose()


def test_a_browser_click_changes_the_users_recommendations(live: LiveDemo) -> None:
    reason = browser.unavailable()
    if reason:
        pytest.skip(reason)
    driver = browser.chromium()
    try:
        driver.get(f"{live.url}/?user=12")
        browser.wait_css(driver, ".st-key-click-student-1 button", 120)
        browser.wait_idle(driver)
        before = browser.rows(driver, "student")
        assert len(before) == 10
        clicked = before[0].split(". ", 1)[1].rsplit(" — ", 1)[0]
        outcome = browser.click_first(driver, "student")
        assert "The consumer wrote new recommendations for user 12" in outcome
        after = browser.rows(driver, "student")
        consumer_list = outcome.split("\n")[1:]
        assert len(after) == 10 and after != before
        assert clicked not in " ".join(after) and clicked not in " ".join(consumer_list)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.full_page_screenshot(driver, ARTIFACTS / "browser-click.png")
    finally:
        driver.quit()


def test_a_consumer_killed_with_sigkill_is_restarted_and_recommendations_resume(live: LiveDemo) -> None:
    engine = create_engine_for(live.world.database_url)
    sessions = make_sessionmaker(engine, read_only=True)
    try:
        killed = live.child_pid("consumer")
        with sessions() as session:
            before = session.scalar(select(func.max(Recommendation.id))) or 0
        user = 9
        item = _unseen_item(sessions, user)
        os.kill(killed, signal.SIGKILL)
        started = time.monotonic()
        click = publish_click(live.kafka, user, item)  # published while no consumer runs
        deadline = started + 90
        found = None
        while found is None and time.monotonic() < deadline:
            with sessions() as session:  # the click's own, or one of a later event of the same user in its batch
                found = queries.recommendation_after(session, user, before, click.ts)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert found is not None, live.output()[-4000:]
        log.info(
            "kill -9 of the consumer (pid %d) -> first fresh recommendation (user %d, id %d): %.1f s",
            killed,
            user,
            found.id,
            elapsed,
        )
        assert item not in found.items
        output = live.output()
        assert re.search(
            rf"^consumer \(pid {killed}\) was killed by SIGKILL after .* s up; restarting it in 1 s "
            r"\(restart 1\); last lines of ",
            output,
            re.M,
        ), output[-4000:]
        assert "consumer: restarted (restart 1), pid" in output and live.child_pid("consumer") != killed
        consumer_log = (live.log_path.parent / "logs" / "consumer.log").read_text()
        before_restart, after_restart = consumer_log.split("restart 1 of consumer by the supervisor ---")
        assert before_restart.strip() and after_restart.strip()  # appended: the killed run's lines survive
    finally:
        engine.dispose()


def test_ctrl_c_stops_every_process(live: LiveDemo) -> None:
    assert len(processes_with(live.marker)) >= 5  # demo, broker, consumer, scheduler, traffic, app
    assert live.stop() == 0
    deadline = time.monotonic() + 10
    while processes_with(live.marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(live.marker) == []
    assert not port_open("127.0.0.1", live.port)
    assert not port_open("127.0.0.1", int(live.kafka.bootstrap_servers.rsplit(":", 1)[1]))
    assert "stopped" in live.output()
