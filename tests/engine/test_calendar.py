"""The exchange calendar: sessions known in advance, schedules that do not depend on where the
period or the data ends, holidays, and data gaps reported in one line."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import data_gaps, sessions, split_days
from engine.clock import scheduled_rebalances
from engine.config import RebalanceConfig, RunConfig, validate_config
from engine.session import build_session
from sentinel.db import Store
from sentinel.errors import ConfigError
from tests.conftest import make_demo_db

GOOD_FRIDAY_2016 = date(2016, 3, 25)


def test_sessions_skip_holidays_and_reach_back_to_1999():
    year = sessions("XNYS", date(2016, 1, 1), date(2016, 12, 31))
    assert len(year) == 252
    assert GOOD_FRIDAY_2016 not in year and date(2016, 7, 4) not in year
    assert all(isinstance(d, date) for d in year)
    assert sessions("XNYS", date(1999, 1, 1), date(1999, 1, 8))[0] == date(1999, 1, 4)
    london = sessions("XLON", date(2016, 8, 29), date(2016, 8, 29))
    assert london == []  # the August bank holiday is a London holiday, not a New York one


def test_weekly_friday_holiday_moves_to_thursday_before_the_data_exists():
    weekly = RebalanceConfig(every="weekly", weekday="friday")
    # the period (and so any data) ends on Thursday: Good Friday is known to be closed already
    got = scheduled_rebalances("XNYS", weekly, date(2016, 3, 14), date(2016, 3, 24))
    assert sorted(got) == [date(2016, 3, 18), date(2016, 3, 24)]


def test_a_period_ending_mid_month_does_not_make_a_month_end():
    monthly = RebalanceConfig(every="monthly")
    got = scheduled_rebalances("XNYS", monthly, date(2016, 1, 4), date(2016, 3, 15))
    assert sorted(got) == [date(2016, 1, 29), date(2016, 2, 29)]


rules = st.sampled_from(
    [
        RebalanceConfig(every="weekly", weekday="friday"),
        RebalanceConfig(every="weekly", weekday="monday"),
        RebalanceConfig(every="week_start"),
        RebalanceConfig(every="monthly"),
        RebalanceConfig(every="days", n_days=3),
    ]
)


@settings(max_examples=40, deadline=None)
@given(
    rule=rules,
    start=st.dates(date(2000, 1, 1), date(2024, 1, 1)),
    seen=st.integers(1, 120),
    later=st.integers(0, 400),
)
def test_the_schedule_up_to_a_day_ignores_everything_after_it(rule, start, seen, later):
    """What live knows on day ``d`` (the schedule up to d) equals the backtest's over any longer
    period: the rebalance days are fixed in advance."""
    d = start + timedelta(days=seen)
    short = scheduled_rebalances("XNYS", rule, start, d)
    long = scheduled_rebalances("XNYS", rule, start, d + timedelta(days=later))
    assert short == {x for x in long if x <= d}
    assert short <= set(sessions("XNYS", start, d))


def test_unknown_calendar_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"^x\.yaml: calendar: unknown exchange calendar 'NOPE'"):
        validate_config({"start": "2016-01-01", "end": "2016-02-01", "calendar": "NOPE"}, "x.yaml")
    ok = validate_config({"start": "2016-01-01", "end": "2016-02-01", "calendar": "XLON"})
    assert ok.calendar == "XLON" and RunConfig(start=ok.start, end=ok.end).calendar == "XNYS"


def test_split_days_keeps_sessions_only():
    days = [date(2016, 3, 24), GOOD_FRIDAY_2016, date(2016, 3, 28)]
    assert split_days("XNYS", days) == ([days[0], days[2]], [GOOD_FRIDAY_2016])


def test_data_gaps_count_market_and_symbol_gaps_in_one_line():
    sess = sessions("XNYS", date(2016, 3, 1), date(2016, 3, 31))
    have = [d for d in sess if d != date(2016, 3, 10)]  # no bar at all that day
    dates = np.array(have, dtype="datetime64[D]")
    close = np.ones((len(have), 3))
    close[have.index(date(2016, 3, 15)), 0] = np.nan  # AAA misses one day while listed
    close[: have.index(date(2016, 3, 21)), 2] = np.nan  # CCC lists on the 21st: no gap before
    listed = [
        ("AAA", date(2016, 1, 1), None),
        ("BBB", date(2016, 1, 1), None),
        ("CCC", date(2016, 3, 21), None),
        ("DDD", date(2016, 3, 30), None),  # listed, never a bar: 2 sessions missing
    ]
    line = data_gaps("XNYS", sess[0], sess[-1], dates, close, ["AAA", "BBB", "CCC"], listed)
    assert line is not None and "\n" not in line
    assert "1 XNYS session(s) without any bar (first 2016-03-10)" in line
    assert "3 missing bar(s) of 2 listed symbol(s)" in line and "DDD 2, AAA 1" in line
    full = np.ones((len(sess), 3))
    dates_all = np.array(sess, dtype="datetime64[D]")
    assert data_gaps("XNYS", sess[0], sess[-1], dates_all, full, ["AAA", "BBB", "CCC"],
                     listed[:3]) is None  # fmt: skip
    # a store without any bar: every session is a gap (it raised IndexError)
    none = data_gaps("XNYS", sess[0], sess[-1], np.array([], dtype="datetime64[D]"),
                     np.ones((0, 1)), ["AAA"], listed[:1])  # fmt: skip
    assert none is not None and f"{len(sess)} XNYS session(s) without any bar" in none


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("cal"), 5, 4, "2016-01-01", "2016-06-30")


CFG = {"name": "cal", "start": "2016-02-01", "end": "2016-05-31", "ml": {"enabled": False}}


def test_demo_is_on_xnys_sessions_so_a_run_has_no_calendar_warning(demo_db):
    store = Store(f"sqlite:///{demo_db}")
    session = build_session(RunConfig.model_validate(CFG), store)
    assert session.days == sessions("XNYS", date(2016, 2, 1), date(2016, 5, 31))
    assert not [w for w in session.warnings if "session" in w or "data gaps" in w]


def test_a_holiday_bar_is_not_traded_and_a_missing_bar_is_reported(demo_db, tmp_path):
    path = tmp_path / "gaps.db"
    path.write_bytes(demo_db.read_bytes())
    with sqlite3.connect(path) as db:
        sym = db.execute("SELECT MIN(symbol) FROM prices").fetchone()[0]
        db.execute("DELETE FROM prices WHERE symbol = ? AND date = '2016-03-01'", (sym,))
        db.execute(
            "INSERT INTO prices SELECT symbol, '2016-03-25', open, high, low, close, adj_close, "
            "volume FROM prices WHERE date = '2016-03-24'"
        )
    store = Store(f"sqlite:///{path}")
    before = store.db.count("prices")
    session = build_session(RunConfig.model_validate(CFG), store)
    assert GOOD_FRIDAY_2016 not in session.days and date(2016, 3, 1) in session.days
    joined = " | ".join(session.warnings)
    assert "1 day(s) with bars are not XNYS sessions (first 2016-03-25)" in joined
    assert (
        f"1 missing bar(s) of 1 listed symbol(s) on sessions that have other bars (most: {sym} 1)"
        in joined
    )
    assert store.db.count("prices") == before  # reporting changes nothing


def test_the_cli_progress_counts_the_sessions_the_run_simulates(demo_db, tmp_path):
    # a bar on Good Friday is in the store but not traded: the progress total must not count it
    import re

    import yaml
    from typer.testing import CliRunner

    from cli.main import app

    path = tmp_path / "holiday.db"
    path.write_bytes(demo_db.read_bytes())
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO prices SELECT symbol, '2016-03-25', open, high, low, close, adj_close, "
            "volume FROM prices WHERE date = '2016-03-24'"
        )
    cfg = tmp_path / "cal.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    args = ["--db", f"sqlite:///{path}", "backtest", str(cfg), "--output", str(tmp_path / "out")]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    found = re.finditer(r"simulating [\d-]+: [\d,]+/([\d,]+) \(", r.output)
    totals = {int(m.group(1).replace(",", "")) for m in found}
    n_sessions = len(sessions("XNYS", date(2016, 2, 1), date(2016, 5, 31)))
    assert totals == {n_sessions}, r.output
