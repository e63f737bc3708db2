"""A database lease: at most one holder of a named job across processes and machines.

``try_acquire`` is one ``INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE <expired or mine>
RETURNING holder`` in its own transaction: on PostgreSQL the conflicting row is locked and the
``WHERE`` re-checked under that lock, on SQLite the transaction holds the write lock from
``BEGIN IMMEDIATE``, so two contenders can never both get the lease. The holder renews it while
it works (``HeldLease`` runs a heartbeat thread) and deletes it at the end; a holder that dies
stops renewing, and the lease is free again ``ttl`` seconds after its last renewal.

Times come from the database server on PostgreSQL (one clock for every machine) and from the
local clock on SQLite (a single-host database). ``assert_held`` is the fencing check: call it
inside the transaction that publishes the holder's work.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store import dialect
from store.models import JobLock, table, utcnow

log = logging.getLogger(__name__)
LOCKS = table(JobLock)


class LeaseLost(RuntimeError):
    """The lease expired and may belong to someone else: the holder must not publish."""


def new_holder() -> str:
    """A holder id unique to this process and call: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def db_now(session: Session) -> datetime:
    """The database's current time (PostgreSQL) or this host's (SQLite), timezone-aware UTC."""
    if dialect.dialect_name(session) == "postgresql":
        return session.scalar(select(func.clock_timestamp()))  # type: ignore[return-value]
    return utcnow()


def try_acquire(session: Session, name: str, holder: str, ttl_seconds: float) -> bool:
    """Take the lease if it is free, expired, or already ours (then it is extended)."""
    now = db_now(session)
    expires = now + timedelta(seconds=ttl_seconds)
    stmt = dialect.insert(session, LOCKS).values(
        name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=expires
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "holder": stmt.excluded.holder,
            "acquired_at": stmt.excluded.acquired_at,
            "renewed_at": stmt.excluded.renewed_at,
            "expires_at": stmt.excluded.expires_at,
        },
        where=(LOCKS.c.expires_at <= now) | (LOCKS.c.holder == holder),
    ).returning(LOCKS.c.holder)
    return session.execute(stmt).scalar_one_or_none() == holder


def renew(session: Session, name: str, holder: str, ttl_seconds: float) -> bool:
    """Push our lease's expiry ``ttl_seconds`` past now; False if it is no longer ours."""
    now = db_now(session)
    result = cast(
        CursorResult[Any],
        session.execute(
            update(LOCKS)
            .where(LOCKS.c.name == name, LOCKS.c.holder == holder)
            .values(renewed_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
        ),
    )
    return result.rowcount == 1


def release(session: Session, name: str, holder: str) -> bool:
    """Give the lease up; does nothing (False) when someone else holds it by now."""
    result = cast(
        CursorResult[Any], session.execute(delete(LOCKS).where(LOCKS.c.name == name, LOCKS.c.holder == holder))
    )
    return result.rowcount == 1


def current(session: Session, name: str) -> JobLock | None:
    """The lease row (possibly expired), or None when nobody holds it."""
    return session.get(JobLock, name, populate_existing=True)


def assert_held(session: Session, name: str, holder: str) -> None:
    """Raise ``LeaseLost`` unless ``holder`` holds an unexpired lease; locks the row until commit."""
    row = session.execute(
        select(LOCKS.c.holder, LOCKS.c.expires_at).where(LOCKS.c.name == name).with_for_update()
    ).first()
    if row is None or row.holder != holder:
        raise LeaseLost(f"lease {name!r} is held by {row.holder if row else 'nobody'}, not {holder}")
    if row.expires_at <= db_now(session):
        raise LeaseLost(f"lease {name!r} of {holder} expired at {row.expires_at:%H:%M:%S}")


class HeldLease:
    """Acquire a lease and keep it alive from a heartbeat thread until ``release``.

    ``ensure()`` raises ``LeaseLost`` once a renewal found the lease taken (or renewals kept
    failing until it expired); the work checks it between steps and before publishing.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        ttl_seconds: float,
        holder: str | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.ttl = float(ttl_seconds)
        self.holder = holder or new_holder()
        self.every = heartbeat_seconds if heartbeat_seconds is not None else self.ttl / 3
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None
        self.renewals = 0

    def acquire(self) -> bool:
        with self.sessions.begin() as session:
            got = try_acquire(session, self.name, self.holder, self.ttl)
        if got:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"lease-{self.name}", daemon=True)
            self._thread.start()
            log.info("lease %r acquired by %s (ttl %.0fs)", self.name, self.holder, self.ttl)
        return got

    def _beat(self) -> None:
        last_ok = utcnow()
        while not self._stop.wait(self.every):
            try:
                with self.sessions.begin() as session:
                    ok = renew(session, self.name, self.holder, self.ttl)
            except SQLAlchemyError as exc:  # the database may come back before the lease expires
                log.warning("lease %r: renewal failed (%s)", self.name, exc)
                if (utcnow() - last_ok).total_seconds() >= self.ttl:
                    self._lost = f"renewals failed for {self.ttl:.0f}s: {exc}"
                    return
                continue
            if not ok:
                self._lost = "another holder took the lease over"
                log.error("lease %r lost by %s: %s", self.name, self.holder, self._lost)
                return
            last_ok = utcnow()
            self.renewals += 1

    @property
    def lost(self) -> str | None:
        return self._lost

    def ensure(self) -> None:
        if self._lost is not None:
            raise LeaseLost(f"lease {self.name!r} lost by {self.holder}: {self._lost}")

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def release(self) -> None:
        self.stop_heartbeat()
        try:
            with self.sessions.begin() as session:
                released = release(session, self.name, self.holder)
        except Exception:
            log.exception("lease %r: release failed; it expires on its own", self.name)
            return
        if released:
            log.info("lease %r released by %s", self.name, self.holder)
