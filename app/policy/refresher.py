"""Keep every process current: poll the change log and reload when another process changed it.

Several workers (``accessgov serve --workers N``) or replicas share one database; a grant revoked
through one of them must stop allowing in all of them.  Each process checks the newest change id
every ``interval`` seconds (one indexed query) and rebuilds its state when it moved.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.authz.directory import StateHolder
from app.policy.models import Change
from app.policy.service import PolicyService

log = logging.getLogger(__name__)


class StateRefresher:
    """A daemon thread that reloads the decision state when the change log moves."""

    def __init__(self, *, factory: sessionmaker[Session], holder: StateHolder, policy: PolicyService,
                 interval: float) -> None:
        self._factory = factory
        self._holder = holder
        self._policy = policy
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="state-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def check_once(self) -> bool:
        """Catch up if the database is ahead of this process; True when it applied something."""
        with self._factory() as session:
            newest = str(session.scalar(select(func.max(Change.id))) or 0)
        current = self._holder.current
        if current is not None and current.version == newest:
            return False
        return self._policy.live.catch_up()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self.check_once():
                    log.info("decision state reloaded after a change made elsewhere")
            except Exception:
                # Keep the last good state; decisions go on with it and the next poll retries.
                log.exception("state refresh failed")
