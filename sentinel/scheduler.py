"""The weekly retrain: Sunday 23:00 in the ``timezone`` setting, new samples then a full retrain.

The schedule is an APScheduler cron trigger, so tests ask it for the next fire times from any
"now" (:func:`next_fire_times`) instead of waiting for a Sunday; the job itself is a plain
function (:func:`weekly_retrain`) they call directly. The job is always scheduled and reads
``ml_retrain_weekly`` when it fires, so switching it through ``/api/settings`` takes effect without
a restart.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from sentinel.retrain import RetrainBusyError, RetrainManager

log = logging.getLogger(__name__)

JOB_ID = "weekly-retrain"


def weekly_trigger(timezone: str) -> CronTrigger:
    """Sunday 23:00 in ``timezone`` (an IANA name; DST handled by the trigger)."""
    return CronTrigger(day_of_week="sun", hour=23, minute=0, timezone=ZoneInfo(timezone))


def next_fire_times(trigger: CronTrigger, now: datetime, n: int = 1) -> list[datetime]:
    """The next ``n`` fire times after ``now`` (an aware datetime): the controllable clock."""
    out: list[datetime] = []
    prev: datetime | None = None
    t = now
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, t)
        if nxt is None:
            break
        out.append(nxt)
        prev, t = nxt, nxt
    return out


def weekly_retrain(manager: RetrainManager) -> dict[str, Any] | None:
    """The job: incremental samples (90 days; whole history for new symbols), then retrain all.

    Every symbol with at least ``ml_min_samples_per_symbol`` samples is trained, so a security
    that reached the minimum this week gets its first model here. Returns the notes' completed
    shape, or None when weekly retraining is off or another retrain is running.
    """
    if not manager.settings().ml_retrain_weekly:
        log.info("weekly retrain skipped: ml_retrain_weekly is off")
        return None
    try:
        return manager.run(refresh_samples=True, trigger="weekly")
    except RetrainBusyError as exc:
        log.warning("weekly retrain skipped: %s", exc)
        return None


def start_scheduler(manager: RetrainManager, timezone: str) -> BackgroundScheduler:
    """A started background scheduler running :func:`weekly_retrain` on the weekly trigger."""
    sched = BackgroundScheduler(timezone=ZoneInfo(timezone))
    sched.add_job(
        weekly_retrain, weekly_trigger(timezone), args=[manager], id=JOB_ID,
        max_instances=1, coalesce=True, misfire_grace_time=3600,
    )  # fmt: skip
    sched.start()
    job = sched.get_job(JOB_ID)
    log.info("weekly retrain scheduled; next run %s", job.next_run_time if job else None)
    return sched
