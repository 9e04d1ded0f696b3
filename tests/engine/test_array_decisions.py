"""The array path from the store to the orders changes no answer: a run whose strategy decides
from numpy arrays (no close DataFrame, no weights Series per rebalance) has the decisions,
orders, fills and equity of the same run through the pandas path; the decision log turns array
decisions into the same Series when read; orders from arrays equal orders from a Series."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.broker import SimulatedBroker, orders_for_targets
from engine.config import RunConfig
from engine.portfolio import Portfolio
from engine.runner import DecisionLog
from engine.session import build_session
from sentinel.db import Store
from strategies.base import Targets
from tests.conftest import make_demo_db


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("arr"), 5, 10, "2015-01-01", "2017-12-31")


def _cfg(universe: dict) -> RunConfig:
    return RunConfig.model_validate({
        "name": "arrays", "start": "2015-06-01", "end": "2017-12-29", "universe": universe,
        "rebalance": {"every": "weekly", "weekday": "monday", "min_trade_weight": 0.01},
        "strategy": {"name": "momentum", "params": {"n": 3, "lookback": 40, "skip": 5}},
        "ml": {"enabled": False},
        "costs": {"commission_bps": 5, "min_commission": 1, "slippage_bps": 5},
        "initial_cash": 100_000,
    })  # fmt: skip


def _run(store: Store, cfg: RunConfig, arrays: bool):
    session = build_session(cfg, store)
    assert session.decider.array_path  # momentum offers it
    session.decider.array_path = arrays
    portfolio = Portfolio(cash=cfg.initial_cash)
    log = session.runner(broker=SimulatedBroker(cfg.costs), portfolio=portfolio).run()
    return log, portfolio


@pytest.mark.parametrize("universe", [{"kind": "all"}, {"kind": "list", "symbols": "SOME"}])
def test_a_run_through_arrays_equals_the_run_through_pandas(demo_db, universe):
    store = Store(f"sqlite:///{demo_db}")
    if universe.get("symbols") == "SOME":  # a listed universe: a subset, one symbol delisted
        secs = store.market.securities()
        gone = [s.symbol for s in secs if s.universe_to is not None]
        universe = {"kind": "list", "symbols": sorted({*gone, *[s.symbol for s in secs[::2]]})}
    cfg = _cfg(universe)
    a_log, a = _run(store, cfg, arrays=True)
    b_log, b = _run(store, cfg, arrays=False)
    assert list(a_log.decisions) == list(b_log.decisions) and len(a_log.decisions) > 100
    for day, w in b_log.decisions.items():
        pd.testing.assert_series_equal(a_log.decisions[day], w, check_exact=True, obj=str(day))
    assert sum(len(w) > 0 for w in b_log.decisions.values()) > 50  # mostly invested
    assert a_log.orders == b_log.orders and a.fills == b.fills
    assert a.equity_rows == b.equity_rows and a.weight_rows == b.weight_rows


def test_the_decision_log_builds_an_array_decision_once_when_read():
    log = DecisionLog()
    d1, d2 = date(2020, 1, 6), date(2020, 1, 13)
    targets = Targets(np.array(["A", "B"], dtype=object), np.array([0.25, 0.5]))
    log[d1] = targets
    log[d2] = pd.Series({"C": 1.0})
    assert list(log) == [d1, d2] and len(log) == 2 and d1 in log and date(2020, 1, 7) not in log
    first = log[d1]
    pd.testing.assert_series_equal(first, targets.series())
    assert log[d1] is first  # built once
    assert dict(log.items())[d2].to_dict() == {"C": 1.0}
    del log[d2]
    assert list(log) == [d1]


def test_orders_from_arrays_equal_orders_from_a_series():
    pf = Portfolio(cash=5_000.0, positions={"OLD": 5.0, "AAA": 10.0},
                   last_price={"OLD": 100.0, "AAA": 30.0})  # fmt: skip
    prices = {"AAA": 33.0, "BBB": 70.0, "OLD": 100.0}
    targets = Targets(np.array(["AAA", "BBB", "NOBAR"], dtype=object),
                      np.array([0.5, 0.25, 0.1]))  # fmt: skip
    for fractional in (False, True):
        for small in (0.0, 2_000.0):
            got = orders_for_targets("r", date(2020, 1, 2), targets, pf, prices, small,
                                     fractional)  # fmt: skip
            want = orders_for_targets("r", date(2020, 1, 2), targets.series(), pf, prices, small,
                                      fractional)  # fmt: skip
            assert got == want and got
