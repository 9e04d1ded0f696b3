"""Live mode: same orders as the backtest (parity), restarts are harmless, and a real kill in the
middle of a rebalance never sends an order twice."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.backtest import run_backtest
from engine.config import RunConfig, load_config
from engine.live import LiveRunner, replay_parity, sync_prices
from sentinel.db import Store
from sentinel.errors import SentinelError
from tests.conftest import make_demo_db

CFG = {
    "name": "paper",
    "start": "2016-06-01",
    "end": "2016-09-30",
    "rebalance": {"every": "weekly", "weekday": "friday", "min_trade_weight": 0.0},
    "strategy": {"name": "top_n", "params": {"n": 3}},
    "ml": {"enabled": False},
    "initial_cash": 100_000,
}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("live"), 21, 8, "2015-01-01", "2016-12-31")


def _copy(demo_db: Path, tmp_path: Path, name: str) -> Store:
    path = tmp_path / name
    shutil.copy(demo_db, path)
    return Store(f"sqlite:///{path}")


def _orders(store: Store, account: str) -> list[tuple]:
    return [(o.decided_on, o.symbol, o.quantity, o.status, o.fill_day, o.fill_price)
            for o in store.records.live_orders(account)]  # fmt: skip


def _backtest_orders(result) -> list[tuple]:
    filled = {r.order_id: r for r in result.trades.itertuples()}
    cancelled = {o.order_id for _, o, _ in result.cancelled}
    out = []
    for o in result.log.orders:
        f = filled.get(o.order_id)
        qty = (f.quantity if f.side == "buy" else -f.quantity) if f else o.quantity
        status = "filled" if f else "cancelled" if o.order_id in cancelled else "pending"
        out.append((o.decided_on, o.symbol, qty, status,
                    f.date.date() if f else None, f.price if f else None))  # fmt: skip
    return sorted(out, key=lambda t: (t[0], t[1]))


def test_replay_with_a_restart_every_day_matches_the_backtest(demo_db, tmp_path):
    cfg = RunConfig.model_validate(CFG)
    bt = run_backtest(cfg, store=_copy(demo_db, tmp_path, "bt.db"), save=False)
    store = _copy(demo_db, tmp_path, "live.db")
    days = 0
    while True:  # a new process-like runner for every day: state comes from the database
        reports = LiveRunner(cfg, store, replay=True).run_due(once=True)
        if not reports:
            break
        days += 1
    assert days == len(bt.equity)
    live = _orders(store, "paper")
    # the backtest's last orders are still pending at the end, as they are live
    assert live == _backtest_orders(bt)
    acct = store.records.get_live_account("paper")
    assert acct.cash == pytest.approx(bt.equity["cash"].iloc[-1])
    recs = store.records.live_recommendations("paper")
    assert {r.date for r in recs} == set(bt.log.decisions)


def test_walk_forward_replay_matches_the_backtest(demo_db, tmp_path):
    ml = {"enabled": True, "mode": "walk_forward", "retrain": "monthly", "min_samples": 20,
          "max_epochs": 3}  # fmt: skip
    cfg = RunConfig.model_validate({**CFG, "ml": ml})
    bt = run_backtest(cfg, store=_copy(demo_db, tmp_path, "bt.db"), save=False)
    store = _copy(demo_db, tmp_path, "live.db")
    LiveRunner(cfg, store, replay=True).run_due()
    assert _orders(store, "paper") == _backtest_orders(bt)


def test_processed_days_are_not_processed_again(demo_db, tmp_path):
    cfg = RunConfig.model_validate(CFG)
    store = _copy(demo_db, tmp_path, "live.db")
    runner = LiveRunner(cfg, store, replay=True)
    runner.run_due()
    before = _orders(store, "paper")
    assert LiveRunner(cfg, store, replay=True).run_due() == []
    tick = runner.clock.due(None)[10]
    assert not runner.step(tick).orders_sent
    assert _orders(store, "paper") == before


#: ``sentinel`` with a paper broker that waits 0.3 s after each order, so a kill lands mid-day.
SLOW_BROKER = """
import sys, time
import engine.live as live
submit = live.PaperBroker.submit
def slow(self, orders):
    for o in orders:
        submit(self, [o])
        time.sleep(0.3)
live.PaperBroker.submit = slow
from cli.main import main
sys.argv = ["sentinel", *sys.argv[1:]]
main()
"""


def test_kill_mid_rebalance_then_restart_sends_nothing_twice(demo_db, tmp_path, run_cli):
    cfg_path = tmp_path / "paper.yaml"
    cfg_path.write_text(yaml.safe_dump(CFG))
    clean = _copy(demo_db, tmp_path, "clean.db")
    LiveRunner(load_config(cfg_path), clean, replay=True).run_due()
    victim = _copy(demo_db, tmp_path, "victim.db")
    url = str(victim.engine.url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = ["--db", url, "live", str(cfg_path), "--replay"]
    slow = [sys.executable, "-c", SLOW_BROKER, *args]  # the test's pause lives here, not in live
    proc = subprocess.Popen(slow, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and victim.db.count("live_orders") < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    sent = victim.db.count("live_orders")
    assert sent >= 2, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    first_day = victim.records.live_orders("paper")[0].decided_on
    acct = victim.records.get_live_account("paper")
    assert acct is not None and acct.last_day < first_day  # the rebalance day was not committed
    restart = run_cli(*args, env={}, cwd=tmp_path)  # the kill needs a process; the restart not
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert _orders(victim, "paper") == _orders(clean, "paper")
    ids = [o.order_id for o in victim.records.live_orders("paper")]
    assert len(ids) == len(set(ids))
    assert victim.records.get_live_account("paper").cash == pytest.approx(
        clean.records.get_live_account("paper").cash
    )


def test_csv_drop_folder_sync_and_missing_provider(demo_db, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "bars.csv").write_text(
        "date,symbol,open,high,low,close,volume\n2017-01-03,DAA,10,11,9,10.5,100\n"
    )
    store = _copy(demo_db, tmp_path, "sync.db")
    cfg = RunConfig.model_validate({**CFG, "live": {"drop_dir": str(drop)}})
    assert "1 rows" in sync_prices(cfg, store) or "1 file" in sync_prices(cfg, store)
    assert store.market.get_prices("DAA", end_date=date(2017, 1, 3)).index[-1].year == 2017
    bad = RunConfig.model_validate({**CFG, "live": {"drop_dir": str(tmp_path / "nope")}})
    with pytest.raises(SentinelError, match="not a folder"):
        sync_prices(bad, store)
    yf = RunConfig.model_validate({**CFG, "live": {"provider": "yfinance"}})
    with pytest.raises(SentinelError, match="yfinance"):
        sync_prices(yf, store)


def test_a_delisted_holding_is_settled_and_recorded(tmp_path):
    from sentinel.data.demo import generate_demo_universe, install_demo

    store = Store(f"sqlite:///{tmp_path / 'delist.db'}")
    install_demo(store, generate_demo_universe(11, 8, "2015-01-01", "2017-12-31"))
    gone = next(s for s in store.market.securities() if s.universe_to is not None)
    cfg = RunConfig.model_validate({**CFG, "start": "2016-06-01", "end": "2017-12-29",
                                    "strategy": {"name": "top_n", "params": {"n": 8}}})  # fmt: skip
    LiveRunner(cfg, store, replay=True).run_due()
    settled = [o for o in store.records.live_orders("paper") if o.order_id.endswith(":delisted")]
    assert [o.symbol for o in settled] == [gone.symbol]
    assert settled[0].status == "filled" and settled[0].fill_day > gone.universe_to
    assert gone.symbol not in store.records.get_live_account("paper").positions


def test_a_daily_once_job_makes_the_orders_of_replay_and_of_the_backtest(demo_db, tmp_path):
    """Cron runs ``live --once`` every day of March 2016 while bars arrive one day at a time.
    The rebalance days are the calendar's (Good Friday's moves to Thursday the 24th), so the job
    rebalances on the backtest's days and only marks the book on the others."""
    cfg = RunConfig.model_validate({**CFG, "start": "2016-03-01", "end": "2016-03-31"})
    bt = run_backtest(cfg, store=_copy(demo_db, tmp_path, "bt.db"), save=False)
    replay = _copy(demo_db, tmp_path, "replay.db")
    LiveRunner(cfg, replay, replay=True).run_due()
    path = tmp_path / "cron.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM prices WHERE date >= '2016-03-01'")
    rebalanced = []
    day = date(2016, 3, 1)
    while day <= date(2016, 3, 31):
        with sqlite3.connect(path) as db:  # today's bars arrive
            db.execute("ATTACH DATABASE ? AS full", (str(demo_db),))
            db.execute("INSERT INTO prices SELECT * FROM full.prices WHERE date = ?",
                       (day.isoformat(),))  # fmt: skip
        store = Store(f"sqlite:///{path}")
        for r in LiveRunner(cfg, store, today=day).run_due(once=True):
            assert r.day == day
            assert bool(r.orders_sent) <= r.rebalanced  # a plain day sends nothing
            if r.rebalanced:
                rebalanced.append(r.day)
        store.engine.dispose()
        day += timedelta(days=1)
    assert rebalanced == sorted(bt.log.decisions) == [
        date(2016, 3, 4), date(2016, 3, 11), date(2016, 3, 18), date(2016, 3, 24),
    ]  # fmt: skip
    cron = _orders(Store(f"sqlite:///{path}"), "paper")
    assert cron == _orders(replay, "paper") == _backtest_orders(bt)
    acct = Store(f"sqlite:///{path}").records.get_live_account("paper")
    assert acct.cash == pytest.approx(bt.equity["cash"].iloc[-1])


def test_replay_with_impact_costs_and_a_carried_cap_fills_like_the_backtest(demo_db, tmp_path):
    """Live reads ADV and volatility from the store day by day; the backtest from its preloaded
    bars: the same fills, prices and cash, including the rests the cap carries to later days."""
    costs = {"model": "sqrt_impact", "participation_cap": 0.02, "on_cap": "carry"}
    cfg = RunConfig.model_validate({**CFG, "end": "2016-07-29", "initial_cash": 1e9,
                                    "costs": costs})  # fmt: skip
    bt = run_backtest(cfg, store=_copy(demo_db, tmp_path, "bt.db"), save=False)
    assert bt.metrics["n_capped_orders"] > 0
    store = _copy(demo_db, tmp_path, "live.db")
    LiveRunner(cfg, store, replay=True).run_due()
    live = sorted((o.fill_day, o.symbol, o.quantity, o.fill_price, o.order_id)
                  for o in store.records.live_orders("paper") if o.status == "filled")  # fmt: skip
    back = sorted((t.date.date(), t.symbol, t.quantity if t.side == "buy" else -t.quantity,
                   t.price, t.order_id) for t in bt.trades.itertuples())  # fmt: skip
    live, back = ([t[:-1] + (t[-1].split(":", 1)[1],) for t in x] for x in (live, back))
    assert any(":carry:" in t[-1] for t in back)
    assert [t[:2] + (t[-1],) for t in live] == [t[:2] + (t[-1],) for t in back]
    np.testing.assert_allclose([t[2:4] for t in live], [t[2:4] for t in back], rtol=1e-9)
    acct = store.records.get_live_account("paper")
    assert acct.cash == pytest.approx(bt.equity["cash"].iloc[-1])


def test_cli_replay_prints_a_compact_progress_and_a_parity_summary(demo_db, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    cfg_path = tmp_path / "paper.yaml"
    cfg_path.write_text(yaml.safe_dump(CFG))
    store = _copy(demo_db, tmp_path, "cli.db")
    url = str(store.engine.url)
    args = ["--db", url, "live", str(cfg_path), "--replay"]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    n_days = len(LiveRunner(load_config(cfg_path), store, replay=True).clock.known_days())
    assert n_days > 80 and len(lines) <= 20  # about ten progress lines, not one per day
    assert f"[paper] replayed {n_days} day(s), 2016-06-01 to 2016-09-30" in r.output
    assert lines[-1].startswith("[paper] parity with the backtest: ")
    assert lines[-1].endswith(": equal")
    # a tampered fill is named, not hidden
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE live_orders SET fill_price = fill_price * 1.01 "
                   "WHERE order_id = (SELECT MIN(order_id) FROM live_orders)")  # fmt: skip
    line = replay_parity(load_config(cfg_path), store, "paper")
    assert "DIFFERENT: 1 fill(s) differ in day, quantity or price" in line


def test_a_session_without_bars_is_reported_as_a_data_gap(demo_db, tmp_path):
    from engine.live import LiveClock

    cfg = RunConfig.model_validate(CFG)
    store = _copy(demo_db, tmp_path, "gap.db")
    assert LiveClock(cfg, store, replay=True).gap_warning() is None
    with sqlite3.connect(tmp_path / "gap.db") as db:
        db.execute("DELETE FROM prices WHERE date = '2016-07-12'")
    clock = LiveClock(cfg, store, replay=True)
    line = clock.gap_warning()
    assert line == (
        "data gaps: 1 XNYS session(s) without any bar between 2016-06-01 and 2016-09-30 "
        "(first 2016-07-12): not processed"
    )
    assert date(2016, 7, 12) not in [t.day for t in clock.due(None)]


def test_a_daily_once_job_catches_up_on_actions_dated_on_days_it_skipped(demo_db, tmp_path):
    """A split on a Saturday and a dividend on a session whose bars never came (a data gap) fall
    on days the cron job never processes: the next process applies both, as the backtest does on
    its next session, so shares and cash end equal to the backtest's and to replay's."""
    from sentinel.data.importer import import_files

    base = tmp_path / "base.db"
    shutil.copy(demo_db, base)
    db = sqlite3.connect(base)
    with db:
        db.execute("DELETE FROM prices WHERE date = '2016-03-16'")  # the gap day
    db.close()
    store = Store(f"sqlite:///{base}")
    symbols = [s.symbol for s in store.market.securities()]
    actions = tmp_path / "actions.csv"
    actions.write_text(
        "date,symbol,split_coefficient,dividend\n"
        + "".join(f"2016-03-12,{s},2,\n2016-03-16,{s},,0.5\n" for s in symbols)
    )
    import_files(store, [actions])
    store.engine.dispose()
    cfg = RunConfig.model_validate({**CFG, "start": "2016-03-01", "end": "2016-03-31"})
    bt = run_backtest(cfg, store=_copy(base, tmp_path, "bt.db"), save=False)
    kinds = {(e.day, e.kind) for e in bt.log.book_events}
    assert {(date(2016, 3, 14), "split"), (date(2016, 3, 17), "dividend")} <= kinds
    replay = _copy(base, tmp_path, "replay.db")
    LiveRunner(cfg, replay, replay=True).run_due()
    path = tmp_path / "cron.db"
    shutil.copy(base, path)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM prices WHERE date >= '2016-03-01'")
    day = date(2016, 3, 1)
    while day <= date(2016, 3, 31):
        with sqlite3.connect(path) as db:  # today's bars arrive (none on 12th, 13th and 16th)
            db.execute("ATTACH DATABASE ? AS full", (str(base),))
            db.execute("INSERT INTO prices SELECT * FROM full.prices WHERE date = ?",
                       (day.isoformat(),))  # fmt: skip
        cron = Store(f"sqlite:///{path}")
        LiveRunner(cfg, cron, today=day).run_due(once=True)
        cron.engine.dispose()
        day += timedelta(days=1)
    cron_acct = Store(f"sqlite:///{path}").records.get_live_account("paper")
    replay_acct = replay.records.get_live_account("paper")
    held = {s: q for s, q in replay_acct.positions.items() if q}
    assert held  # the book holds shares through both actions
    assert {s: q for s, q in cron_acct.positions.items() if q} == pytest.approx(held)
    for acct in (cron_acct, replay_acct):
        assert acct.cash == pytest.approx(bt.equity["cash"].iloc[-1])
        value = acct.cash + sum(q * acct.last_price[s] for s, q in acct.positions.items())
        assert value == pytest.approx(bt.equity["equity"].iloc[-1])
