"""The job lease on SQLite and PostgreSQL: one holder at a time, renewal, expiry, take-over."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store import lease
from store.engine import create_engine_for, make_sessionmaker

NAME = "refit"


def test_acquire_renew_release(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert lease.try_acquire(session, NAME, "a", 60)
    with sessions.begin() as session:
        assert not lease.try_acquire(session, NAME, "b", 60)  # held and not expired
        assert lease.try_acquire(session, NAME, "a", 60)  # re-entrant for its holder
        assert lease.renew(session, NAME, "a", 60)
        assert not lease.renew(session, NAME, "b", 60)
        row = lease.current(session, NAME)
        assert row is not None and row.holder == "a" and row.expires_at > row.renewed_at
        lease.assert_held(session, NAME, "a")
        with pytest.raises(lease.LeaseLost):
            lease.assert_held(session, NAME, "b")
    with sessions.begin() as session:
        assert not lease.release(session, NAME, "b")  # not b's to give up
        assert lease.release(session, NAME, "a")
        assert lease.current(session, NAME) is None
        assert lease.try_acquire(session, NAME, "b", 60)


def test_an_expired_lease_lets_a_new_holder_in_and_fences_the_old_one(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert lease.try_acquire(session, NAME, "dead", 0.5)  # a holder that stops renewing
    with sessions.begin() as session:
        assert not lease.try_acquire(session, NAME, "b", 60)
    time.sleep(0.7)
    with sessions.begin() as session:
        with pytest.raises(lease.LeaseLost, match="expired"):
            lease.assert_held(session, NAME, "dead")
        assert lease.try_acquire(session, NAME, "b", 60)
    with sessions.begin() as session:
        assert not lease.renew(session, NAME, "dead", 60)  # the old holder finds it taken
        assert not lease.release(session, NAME, "dead")
        assert lease.current(session, NAME).holder == "b"


def test_heartbeat_keeps_the_lease_past_its_ttl_and_release_frees_it(sessions: sessionmaker[Session]) -> None:
    held = lease.HeldLease(sessions, NAME, ttl_seconds=0.6, heartbeat_seconds=0.1)
    assert held.acquire()
    try:
        time.sleep(1.2)  # two TTLs: only renewals keep it
        with sessions.begin() as session:
            assert not lease.try_acquire(session, NAME, "other", 60)
        assert held.renewals >= 3 and held.lost is None
        held.ensure()
    finally:
        held.release()
    with sessions.begin() as session:
        assert lease.current(session, NAME) is None


def test_a_holder_whose_lease_was_taken_sees_it_lost(sessions: sessionmaker[Session]) -> None:
    held = lease.HeldLease(sessions, NAME, ttl_seconds=60, heartbeat_seconds=0.05)
    assert held.acquire()
    with sessions.begin() as session:  # e.g. an operator cleared it, or it expired during a pause
        assert lease.release(session, NAME, held.holder)
        assert lease.try_acquire(session, NAME, "usurper", 60)
    deadline = time.monotonic() + 10
    while held.lost is None and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(lease.LeaseLost, match="took the lease over"):
        held.ensure()
    held.release()  # must not remove the usurper's lease
    with sessions.begin() as session:
        assert lease.current(session, NAME).holder == "usurper"


def test_contenders_on_separate_engines_get_exactly_one_lease(database_url: str) -> None:
    contenders = 6
    engines: list[Engine] = [create_engine_for(database_url) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    won: list[str] = []
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        try:
            factory = make_sessionmaker(engines[index])
            barrier.wait()
            with factory.begin() as session:
                if lease.try_acquire(session, NAME, f"holder-{index}", 60):
                    won.append(f"holder-{index}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [] and len(won) == 1
        with make_sessionmaker(engines[0])() as session:
            assert lease.current(session, NAME).holder == won[0]
    finally:
        for engine in engines:
            engine.dispose()
