"""Keep every process current: apply the changes other processes made, as soon as they are committed.

Several workers (``accessgov serve --workers N``) or replicas share one database; a grant revoked
through one of them must stop allowing in all of them.

* On PostgreSQL every committed change is announced on a channel (``app.db``: ``pg_notify`` in the
  change's own transaction, so only a committed change is announced).  Each process listens on its own
  connection and catches up as soon as the announcement arrives: milliseconds, not a poll interval.
* Every process also checks the newest change id every ``interval`` seconds (one indexed query) and
  catches up when it moved.  That is the only way on SQLite, and on PostgreSQL the safety net: when
  the listening connection is lost, the process checks at once and listens again on a new one (or polls
  until it can); announcements a connection pooler drops are caught by the poll.

Catching up applies the change log's entries in place (``LivePolicy.catch_up``); a state that
diverged is reloaded in full.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import StateHolder
from app.db import CHANGES_CHANNEL
from app.policy.models import Change
from app.policy.service import PolicyService

log = logging.getLogger(__name__)
_SLICE_SECONDS = 0.25  # longest a listening wait goes without looking at stop() (stop() wakes it at once)
_SEQ = itertools.count()


class StateRefresher:
    """A daemon thread that catches up when the change log moves: woken by PostgreSQL's announcements,
    and every ``interval`` seconds in any case."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, policy: PolicyService,
                 interval: float) -> None:
        self._factory = factory
        self._holder = holder
        self._policy = policy
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Any = None  # psycopg connection LISTENing on CHANGES_CHANNEL (PostgreSQL only)
        self._listen_failed = False  # said once, not every round while the database is away
        self._lost_at = float("-inf")  # when the listening connection was last lost
        self._wake_channel = f"accessgov_wake_{os.getpid()}_{next(_SEQ)}"  # stop() wakes only this listener

    def start(self) -> None:
        """Start listening and polling."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="state-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, and close the listening connection."""
        self._stop.set()
        if self._listener is not None:  # wake it now rather than at the end of its wait
            try:
                with self._factory.kw["bind"].connect() as conn:
                    conn.exec_driver_sql("SELECT pg_notify(%s, '')", (self._wake_channel,))
                    conn.commit()
            except Exception:  # the database is away: the wait ends by itself within _SLICE_SECONDS
                log.debug("could not wake the change listener", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def listening(self) -> bool:
        """Is this process woken by PostgreSQL's announcements (else it polls only)?"""
        return self._listener is not None

    def check_once(self) -> bool:
        """Catch up if the database is ahead of this process; True when it applied something."""
        with self._factory() as session:
            newest = str(session.scalar(select(func.max(Change.id))) or 0)
        current = self._holder.current
        if current is not None and current.version == newest:
            return False
        return self._policy.live.catch_up()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._listener is None and self._listen():
                    pass  # just listening: what was committed before LISTEN is checked now, without waiting
                elif not self._wait():
                    continue  # stopping
                if self._stop.is_set():
                    break
                try:
                    if self.check_once():
                        log.info("decision state caught up with a change made elsewhere")
                except Exception:
                    # Keep the last good state; decisions go on with it and the next round retries.
                    log.exception("state refresh failed")
        finally:
            self._close_listener()

    def _listen(self) -> bool:
        """Open the listening connection (PostgreSQL only); False when there is none to open or it failed."""
        engine = self._factory.kw["bind"]
        if engine.dialect.name != "postgresql":
            return False
        raw = None
        try:
            raw = engine.raw_connection()
            raw.detach()  # a connection of its own for as long as it listens, outside the pool
            conn = raw.dbapi_connection
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANGES_CHANNEL}")
            conn.execute(f"LISTEN {self._wake_channel}")
        except Exception:
            if not self._listen_failed:
                log.warning("cannot listen for change announcements; polling every %.1f s until it can",
                            self._interval, exc_info=True)
            self._listen_failed = True
            if raw is not None:
                raw.close()
            return False
        self._listener, self._listen_failed = conn, False
        log.debug("listening for change announcements on %s", CHANGES_CHANNEL)
        return True

    def _wait(self) -> bool:
        """Wait for an announcement or the interval; False when stopping."""
        deadline = time.monotonic() + self._interval
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if self._listener is None:
                return not self._stop.wait(left)
            try:
                if any(True for _ in self._listener.notifies(timeout=min(left, _SLICE_SECONDS), stop_after=1)):
                    for _ in self._listener.notifies(timeout=0):  # a burst of changes: one catch-up for all
                        pass
                    return True
            except Exception:
                # Announcements may have been missed while it was going: check now, then listen again at once
                # (unless it was lost moments ago too: then poll for this round, not reconnect in a loop).
                log.warning("lost the connection that listens for change announcements; reopening it",
                            exc_info=True)
                self._close_listener()
                now = time.monotonic()
                again, self._lost_at = now - self._lost_at < self._interval, now
                if not again:
                    return True
        return False

    def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already gone: nothing to release
                log.debug("closing the listening connection failed", exc_info=True)
