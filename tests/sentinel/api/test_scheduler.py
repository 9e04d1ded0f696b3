"""The weekly job: fire times from a controllable 'now', and the job run directly on a store."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from sentinel.data.demo import DemoUniverse, install_demo
from sentinel.retrain import RetrainManager
from sentinel.scheduler import next_fire_times, start_scheduler, weekly_retrain, weekly_trigger
from tests.sentinel.api.conftest import FAST

NY = ZoneInfo("America/New_York")


def test_fires_sunday_23_00_local_across_dst():
    trig = weekly_trigger("America/New_York")
    now = datetime(2024, 3, 6, 12, 0, tzinfo=NY)  # a Wednesday, before DST starts (Mar 10)
    fires = next_fire_times(trig, now, 3)
    assert [f.date() for f in fires] == [date(2024, 3, 10), date(2024, 3, 17), date(2024, 3, 24)]
    assert all(f.weekday() == 6 and (f.hour, f.minute) == (23, 0) for f in fires)
    assert fires[0].utcoffset().total_seconds() == -4 * 3600  # EDT after the switch
    autumn = next_fire_times(trig, datetime(2024, 10, 23, tzinfo=NY), 2)
    # Oct 27 is still EDT, Nov 3 (23:00, after the 2:00 switch) is EST
    assert [f.utcoffset().total_seconds() / 3600 for f in autumn] == [-4, -5]


def test_now_exactly_at_fire_time_and_just_after():
    trig = weekly_trigger("America/New_York")
    at = datetime(2024, 3, 17, 23, 0, tzinfo=NY)
    assert next_fire_times(trig, at)[0] == at
    after = next_fire_times(trig, datetime(2024, 3, 17, 23, 0, 1, tzinfo=NY))[0]
    assert after.date() == date(2024, 3, 24)


def test_time_zone_is_the_setting():
    trig = weekly_trigger("Europe/Berlin")
    fire = next_fire_times(trig, datetime(2024, 6, 1, tzinfo=ZoneInfo("UTC")))[0]
    assert fire.tzinfo == ZoneInfo("Europe/Berlin")
    assert fire.astimezone(ZoneInfo("UTC")) == datetime(2024, 6, 2, 21, 0, tzinfo=ZoneInfo("UTC"))
    with pytest.raises(Exception, match="Europe/Nowhere"):
        weekly_trigger("Europe/Nowhere")


def _until(u: DemoUniverse, cut: str, drop: set[str]) -> DemoUniverse:
    """The universe as it was known on ``cut``, without the securities in ``drop``."""
    p = u.prices[(u.prices["date"] <= cut) & ~u.prices["symbol"].isin(drop)]
    b = u.benchmark[u.benchmark["date"] <= cut]
    return DemoUniverse(p, u.securities[~u.securities["symbol"].isin(drop)], b, u.regimes)


def test_weekly_job_gives_first_models_to_new_and_grown_symbols(store, demo_universe, api_settings):
    """Week 1: DAL is short of samples and DAK is not imported. Week 2: both get a model."""
    install_demo(store, _until(demo_universe, "2017-10-31", {"DAK"}))
    store.records.set_settings({"ml_min_samples_per_symbol": 45})
    manager = RetrainManager(store, api_settings, **FAST)

    first = weekly_retrain(manager)
    assert first is not None and first["status"] == "completed"
    assert "DAL" in first["skipped"] and "< ml_min_samples_per_symbol 45" in first["skipped"]["DAL"]
    assert "DAK" not in first["results"] and "DAA" in first["results"]
    assert store.records.get_model_record("DAL") is None

    install_demo(store, demo_universe)  # two more months of bars, and DAK's history arrives
    second = weekly_retrain(manager)
    assert {"DAL", "DAK"} <= set(second["results"])
    assert (
        store.records.get_model_record("DAL") is not None
        and store.records.get_model_record("DAK") is not None
    )
    counts = store.signals.get_training_samples(horizon_days=14).groupby("symbol").size()
    assert counts["DAK"] >= 45  # whole history for the new security, not just 90 days
    assert manager.status()["trigger"] == "weekly"


def test_weekly_job_does_nothing_when_switched_off(store, api_settings):
    store.records.set_settings({"ml_retrain_weekly": False})
    manager = RetrainManager(store, api_settings, **FAST)
    assert weekly_retrain(manager) is None
    assert manager.status()["state"] == "idle"


def test_scheduler_registers_the_job_on_the_trigger(store, api_settings):
    manager = RetrainManager(store, api_settings, **FAST)
    sched = start_scheduler(manager, "America/New_York")
    try:
        (job,) = sched.get_jobs()
        assert job.next_run_time.weekday() == 6 and job.next_run_time.hour == 23
        assert job.next_run_time > datetime.now(NY)
    finally:
        sched.shutdown(wait=False)
