"""When the audit is due: a crontab expression in a time zone (quarterly in Asia/Shanghai by default).

``latest_due`` is the most recent due time at or before now.  A scheduled run's key names that due
time, so every process that notices it is due tries the same key and only one runs; a service that
was down at the due time runs it when it comes back (caught up), once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

_LOOKBACK = (timedelta(hours=1), timedelta(days=2), timedelta(days=40), timedelta(days=400), timedelta(days=3000))


def trigger_for(cron: str, tz: str) -> CronTrigger:
    """The APScheduler trigger of a crontab line (ValueError when it is not one)."""
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(tz))


def latest_due(cron: str, tz: str, now: datetime) -> datetime | None:
    """The last time the schedule fired at or before ``now`` (None if never within ~8 years)."""
    trigger = trigger_for(cron, tz)
    for back in _LOOKBACK:
        fire = trigger.get_next_fire_time(None, now - back)
        if fire is None or fire > now:
            continue
        last = fire
        for _ in range(10_000):
            nxt = trigger.get_next_fire_time(last, last + timedelta(seconds=1))
            if nxt is None or nxt > now:
                break
            last = nxt
        return cast(datetime, last)
    return None


def next_due(cron: str, tz: str, now: datetime) -> datetime | None:
    """The next time the schedule fires after ``now``."""
    return cast(datetime | None, trigger_for(cron, tz).get_next_fire_time(None, now + timedelta(seconds=1)))


def schedule_key(due: datetime) -> str:
    """The run key of the scheduled run due at ``due`` (the same in every process)."""
    return "schedule:" + due.isoformat(timespec="minutes")
