"""The one runner: each tick hands the decider a view bound to that day, and only it makes one."""

from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from engine.broker import SimulatedBroker
from engine.clock import EventType, Tick
from engine.config import CostsConfig
from engine.feed import BarFeed
from engine.portfolio import Portfolio
from engine.runner import Runner
from sentinel.errors import LookAheadError

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A decider that buys one symbol on the first rebalance and records what it was shown."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.seen: list[tuple[str, date | None]] = []
        self.future_refused = 0

    def retrain(self, view) -> None:
        self.seen.append(("retrain", view.day))

    def plan(self, view, current_weights: pd.Series) -> pd.Series:
        self.seen.append(("plan", view.day))
        try:
            view.market.get_prices(
                self.symbol, days=1, end_date=date.fromordinal(view.day.toordinal() + 1)
            )
        except LookAheadError:
            self.future_refused += 1
        return pd.Series({self.symbol: 0.5})


def _runner(store, days, decider, events) -> tuple[Runner, Portfolio]:
    ticks = [Tick(d, events.get(d, ())) for d in days]
    portfolio = Portfolio(cash=100_000.0)
    runner = Runner(
        run_id="t", store=store, clock=ticks, broker=SimulatedBroker(CostsConfig()),
        feed=BarFeed(store, None, days[0], days[-1]), decider=decider, portfolio=portfolio,
    )  # fmt: skip
    return runner, portfolio


def test_each_tick_hands_a_view_bound_to_its_day(demo_store):
    days = demo_store.market.trading_days(date(2016, 3, 1), date(2016, 3, 10))
    sym = demo_store.market.universe_symbols(days[0])[0]
    decider = Recorder(sym)
    events = {days[1]: (EventType.RETRAIN, EventType.REBALANCE), days[4]: (EventType.REBALANCE,)}
    runner, portfolio = _runner(demo_store, days, decider, events)
    log = runner.run()
    assert decider.seen == [("retrain", days[1]), ("plan", days[1]), ("plan", days[4])]
    assert decider.future_refused == 2  # the view refused the next day each time
    assert log.retrains == [days[1]] and sorted(log.decisions) == [days[1], days[4]]
    # decided at day 1's close, filled at day 2's open: nothing held before day 2
    first_fill = min(f.day for f in portfolio.fills)
    assert first_fill == days[2]
    assert demo_store.day is None  # the runner made views; the store it was given is unbounded


def test_the_feed_only_moves_forward(demo_store):
    days = demo_store.market.trading_days(date(2016, 3, 1), date(2016, 3, 10))
    feed = BarFeed(demo_store, None, days[0], days[-1])
    bars = feed.advance(days[2])
    sym = demo_store.market.universe_symbols(days[2])[0]
    close = demo_store.market.get_prices(sym, days=1, end_date=days[2])["close"].iloc[-1]
    assert bars.price(sym, "close") == pytest.approx(close)
    assert bars.price("NOPE", "close") is None
    assert feed.advance(date(2016, 3, 5)).price(sym, "close") is None  # a Saturday: no bars
    with pytest.raises(ValueError, match="only moves forward"):
        feed.advance(days[1])


def test_portfolio_marks_and_weights():
    from engine.portfolio import Fill

    p = Portfolio(cash=1_000.0)
    p.apply(Fill("o1", date(2020, 1, 2), "AAA", 4, 100.0, 1.0, 0.5))
    assert p.cash == pytest.approx(1_000 - 400 - 1)
    assert p.mark(date(2020, 1, 2), {"AAA": 110.0}) == pytest.approx(599 + 440)
    assert p.weights()["AAA"] == pytest.approx(440 / 1039)
    assert p.mark(date(2020, 1, 3), {}) == pytest.approx(1039)  # no bar: last price kept
    p.apply(Fill("o2", date(2020, 1, 6), "AAA", -4, 120.0, 1.0, 0.5))
    assert "AAA" not in p.positions and p.cash == pytest.approx(599 + 480 - 1)
    trades = p.trades_frame()
    assert list(trades["side"]) == ["buy", "sell"] and trades["value"].tolist() == [400.0, 480.0]


def _day_views(path: Path) -> list[int]:
    """Lines of ``path`` that make a store view with a day that is not a literal None."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "view"
            and node.args
            and not (isinstance(node.args[0], ast.Constant) and node.args[0].value is None)
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_runner_sets_now():
    """Outside engine/runner.py no production module binds a view to a day.

    The HMM regime backfill (sentinel/regime_backfill.py) still fits one detector per date on its
    own view; it is a per-symbol batch job outside the run loop and is listed here by name. The
    cross-sectional evaluation (engine/evaluate.py) runs after a backtest: it adds the baselines
    for the days the run scored, each on a view bound to that day, and reads realised returns on
    a view bound to the run's last day; it is listed by name too, as is the report's network
    permutation importance (engine/nn_importance.py), which re-reads the last retrain's training
    rows on a view bound to that retrain day after the run.
    """
    allowed = {
        "engine/runner.py", "sentinel/regime_backfill.py", "engine/evaluate.py",
        "engine/nn_importance.py",
    }  # fmt: skip
    found = {}
    for pkg in ("sentinel", "engine", "strategies", "cli", "scripts"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in allowed and (lines := _day_views(path)):
                found[rel] = lines
    assert not found, f"store views bound to a day outside the runner: {found}"
    assert _day_views(ROOT / "engine" / "runner.py")  # the check sees the runner's own
