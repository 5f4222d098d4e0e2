"""Scheduled pulls: each source with a pull connector and ``interval_minutes`` > 0, in every process.

Every process schedules every source; what keeps it to one run per interval is in the database: a
tick first takes the source's lease (a run in progress anywhere -> this tick is skipped) and then
skips when any process started a run of that source less than the interval ago.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from app.errors import Conflict

log = logging.getLogger(__name__)


class SyncScheduler:
    """APScheduler jobs that pull sources on their intervals."""

    def __init__(self, sync: Any) -> None:
        self._sync = sync
        self._scheduler: BackgroundScheduler | None = None

    def jobs(self) -> dict[str, int]:
        """Source -> interval in minutes, for the sources this process will pull."""
        return {name: source.interval_minutes for name, source in self._sync.config.sources.items()
                if source.interval_minutes > 0 and name in self._sync.pullers}

    def start(self) -> None:
        """Schedule every pullable source (first tick after a random part of its interval)."""
        jobs = self.jobs()
        if not jobs:
            return
        self._scheduler = BackgroundScheduler(timezone="UTC")
        now = datetime.now(UTC)
        for name, minutes in jobs.items():
            first = now + timedelta(seconds=random.uniform(5, max(6.0, minutes * 60 / 4)))  # noqa: S311 (jitter)
            self._scheduler.add_job(self.tick, "interval", minutes=minutes, args=[name], id=f"sync:{name}",
                                    max_instances=1, coalesce=True, next_run_time=first)
        self._scheduler.start()
        log.info("sync scheduled", extra={"sources": jobs})

    def stop(self) -> None:
        """Stop scheduling (a run in progress finishes)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def tick(self, source: str) -> dict[str, Any] | None:
        """One scheduled run of a source, unless another process ran it within its interval."""
        try:
            return self._sync.run_if_due(source, actor="scheduler")  # type: ignore[no-any-return]
        except Conflict:
            log.info("sync of %s is running elsewhere; this tick is skipped", source)
        except Exception:  # a scheduler thread must survive any one run
            log.exception("scheduled sync of %s failed", source)
        return None
