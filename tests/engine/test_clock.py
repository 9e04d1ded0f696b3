"""Schedules: weekly on a weekday (holiday -> the day before), month ends, every N days."""

from __future__ import annotations

from datetime import date, timedelta

from engine.clock import EventType, SimulationClock, rebalance_days
from engine.config import RebalanceConfig


def _bdays(start: date, n: int) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def test_weekly_friday_falls_back_to_thursday_on_holiday():
    days = [d for d in _bdays(date(2020, 1, 6), 15) if d != date(2020, 1, 17)]
    got = sorted(rebalance_days(days, RebalanceConfig(every="weekly", weekday="friday")))
    assert got == [date(2020, 1, 10), date(2020, 1, 16), date(2020, 1, 24)]


def test_monthly_is_last_trading_day_and_every_n():
    days = _bdays(date(2020, 1, 1), 60)
    got = sorted(rebalance_days(days, RebalanceConfig(every="monthly")))
    assert got[:2] == [date(2020, 1, 31), date(2020, 2, 28)]
    every = rebalance_days(days, RebalanceConfig(every="days", n_days=5))
    assert len(every) == 12 and days[0] in every and days[5] in every


def test_clock_orders_events_and_retrains_once_per_period():
    days = _bdays(date(2020, 1, 1), 130)
    clock = SimulationClock(days, RebalanceConfig(every="weekly"), retrain="monthly")
    ticks = list(clock)
    assert [t.day for t in ticks] == days
    retrain = [t.day for t in ticks if t.has(EventType.RETRAIN)]
    months = {(d.year, d.month) for d in days}
    assert len(retrain) == len({(d.year, d.month) for d in retrain}) == len(months)
    for t in ticks:
        assert set(t.events) <= {EventType.RETRAIN, EventType.REBALANCE}
        if t.has(EventType.RETRAIN):
            assert t.has(EventType.REBALANCE)
            assert t.events.index(EventType.RETRAIN) < t.events.index(EventType.REBALANCE)


def test_calendar_clock_rebalances_on_sessions_and_skips_a_gap():
    # March 2016: Good Friday (25th) is a holiday; the data also lacks Friday the 11th (a gap)
    days = [d for d in _bdays(date(2016, 3, 1), 23) if d not in (date(2016, 3, 11),
                                                                 date(2016, 3, 25))]  # fmt: skip
    clock = SimulationClock(days, RebalanceConfig(every="weekly"), calendar="XNYS")
    assert clock.rebalance_dates == [date(2016, 3, 4), date(2016, 3, 18), date(2016, 3, 24)]
    # without the calendar the rule reads the data: the gap's Thursday would stand in for it
    assert date(2016, 3, 10) in rebalance_days(days, RebalanceConfig(every="weekly"))
