"""The audit's schedule in every service process.

Each process checks once a minute whether the schedule's latest due time has a run yet; the run's
key names the due time, so whichever process claims it first runs the audit and the others find
the key taken (exactly once).  A service that was down at the due time runs it within a minute of
coming back (a catch-up run), once.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)
CHECK_SECONDS = 60


class AuditScheduler:
    """An APScheduler job that runs the audit when it is due."""

    def __init__(self, audit: Any) -> None:
        self._audit = audit
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        self._scheduler = BackgroundScheduler(timezone="UTC")
        first = datetime.now(UTC) + timedelta(seconds=random.uniform(10, CHECK_SECONDS))  # noqa: S311 (jitter)
        self._scheduler.add_job(self.tick, "interval", seconds=CHECK_SECONDS, id="audit", max_instances=1,
                                coalesce=True, next_run_time=first)
        self._scheduler.start()
        settings = self._audit.settings
        log.info("audit scheduled", extra={"cron": settings.cron, "timezone": settings.timezone})

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def tick(self) -> dict[str, Any] | None:
        """Run the audit if it is due and nobody ran it yet."""
        try:
            run = self._audit.run_if_due()
        except Exception:  # the scheduler thread must survive a failed run (it is recorded as failed)
            log.exception("scheduled audit failed")
            return None
        if run is not None:
            log.info("scheduled audit done", extra={"run_id": run["id"], "trigger": run["trigger"]})
        try:
            self._audit.remind_due()
        except Exception:  # reminders must not stop the schedule
            log.exception("scheduled review reminders failed")
        return run  # type: ignore[no-any-return]
