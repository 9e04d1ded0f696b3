"""Capacity-aware costs: square-root impact grows with size and volatility, the participation cap
cuts orders to a share of the day's volume (rest cancelled or carried), and the liquidity inputs
are known before the fill day."""

from __future__ import annotations

import math
import shutil
import sqlite3
from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.broker import CAPPED, SimulatedBroker
from engine.config import CostsConfig, RunConfig
from engine.costs import CostModel, Liquidity, liquidity_arrays
from engine.feed import BarFeed, DayBars
from engine.portfolio import Order, Portfolio
from sentinel.db import Store
from tests.conftest import make_demo_db

D0, D1, D2 = date(2020, 1, 2), date(2020, 1, 3), date(2020, 1, 6)
SQRT = CostsConfig(model="sqrt_impact", impact_coef=0.5, slippage_bps=5, commission_bps=0,
                   min_commission=0)  # fmt: skip


def _bars(volume: float, adv: float = 1e4, sigma: float = 0.02, price: float = 100.0) -> DayBars:
    bars = DayBars.from_frame(pd.DataFrame({"open": [price], "close": [price]}, index=["AAA"]))
    bars.volume, bars.adv, bars.sigma = np.array([volume]), np.array([adv]), np.array([sigma])
    return bars


def test_square_root_impact_grows_with_size_and_volatility():
    model = CostModel(SQRT)
    calm, wild = Liquidity(1e4, 1e4, 0.01), Liquidity(1e4, 1e4, 0.04)
    assert model.slippage(1e4, calm) == pytest.approx(5e-4 + 0.5 * 0.01)  # Q = ADV: coef * sigma
    assert model.slippage(2_500, calm) == pytest.approx(5e-4 + 0.5 * 0.01 * 0.5)  # sqrt(1/4)
    assert model.slippage(1e4, wild) > model.slippage(1e4, calm) > model.slippage(10, calm)
    assert model.slippage(1e4, Liquidity()) == pytest.approx(5e-4)  # no history: fixed part
    fixed = CostModel(CostsConfig(slippage_bps=5))
    assert fixed.slippage(1, calm) == fixed.slippage(1e9, calm) == pytest.approx(5e-4)


def test_a_big_order_pays_more_per_share_than_a_small_one():
    per_share = []
    for qty in (10, 5_000):
        pf = Portfolio(cash=1e7)
        br = SimulatedBroker(SQRT)
        br.submit([Order("o", "AAA", qty, D0)])
        (fill,) = br.execute(D1, _bars(volume=1e4), pf)
        per_share.append(fill.slippage / fill.quantity)
        assert fill.price == pytest.approx(100 * (1 + 5e-4 + 0.5 * 0.02 * math.sqrt(qty / 1e4)))
    assert per_share[1] > 5 * per_share[0]


def test_participation_cap_cancels_the_rest():
    pf = Portfolio(cash=1e7)
    br = SimulatedBroker(CostsConfig(participation_cap=0.1, on_cap="cancel"))
    br.submit([Order("o", "AAA", 500, D0)])
    (fill,) = br.execute(D1, _bars(volume=1_234), pf)
    assert fill.quantity == 123  # whole shares, at most 10 % of the day's volume
    assert [(d, o.order_id, filled, over) for d, o, filled, over in br.capped] == [
        (D1, "o", 123, 377)
    ]
    assert br.pending == [] and br.execute(D2, _bars(volume=1e6), pf) == []


def test_participation_cap_carries_the_rest_to_the_next_days():
    pf = Portfolio(cash=1e7)
    br = SimulatedBroker(CostsConfig(participation_cap=0.5, on_cap="carry", fractional=False))
    br.submit([Order("o", "AAA", 300, D0)])
    first = br.execute(D1, _bars(volume=200), pf)
    second = br.execute(D2, _bars(volume=200), pf)
    third = br.execute(date(2020, 1, 7), _bars(volume=1e6), pf)
    assert [f.quantity for f in first + second + third] == [100, 100, 100]
    assert [f.order_id for f in second + third] == ["o:carry:2020-01-03", "o:carry:2020-01-06"]
    assert pf.positions["AAA"] == 300 and br.pending == []


def test_no_volume_cancels_the_order_and_sells_are_capped_too():
    pf = Portfolio(cash=0.0, positions={"AAA": 1_000.0}, last_price={"AAA": 100.0})
    br = SimulatedBroker(CostsConfig(participation_cap=0.1))
    br.submit([Order("s", "AAA", -1_000, D0), Order("b", "BBB", 1, D0)])
    bars = DayBars.from_frame(
        pd.DataFrame({"open": [100.0, 10.0], "close": [100.0, 10.0]}, index=["AAA", "BBB"])
    )
    bars.volume = np.array([2_000.0, 0.0])
    fills = br.execute(D1, bars, pf)
    assert [(f.symbol, f.quantity) for f in fills] == [("AAA", -200)]
    assert [(o.order_id, why) for _, o, why in br.cancelled] == [("b", CAPPED)]


def test_liquidity_ignores_missing_bars():
    vol = np.array([[100.0, np.nan], [300.0, np.nan], [np.nan, 5.0]])
    close = np.array([[10.0, np.nan], [11.0, np.nan], [12.1, 5.0], [12.1, 5.0]])
    adv, sigma = liquidity_arrays(vol, close)
    assert adv[0] == pytest.approx(200.0) and adv[1] == pytest.approx(5.0)
    assert sigma[0] == pytest.approx(np.std([math.log(1.1)] * 2 + [0.0], ddof=1))
    assert math.isnan(sigma[1])  # one return only


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("costs"), 9, 5, "2015-01-01", "2016-06-30")


def test_feed_liquidity_is_known_before_the_day(demo_db, tmp_path):
    """ADV and volatility at a day come from the bars before it: rewriting the day and every
    later bar changes its volume but not its ADV or volatility."""
    day = date(2016, 4, 15)
    path = tmp_path / "future.db"
    shutil.copy(demo_db, path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE prices SET volume = volume * 7, close = close * 1.3 WHERE date >= ?",
                   (day.isoformat(),))  # fmt: skip
    got = []
    for p in (demo_db, path):
        bars = BarFeed(Store(f"sqlite:///{p}"), None, date(2016, 3, 1), date(2016, 6, 30), 20)
        got.append(bars.advance(day))
    np.testing.assert_allclose(got[0].adv, got[1].adv)
    np.testing.assert_allclose(got[0].sigma, got[1].sigma)
    np.testing.assert_allclose(got[0].volume * 7, got[1].volume)


CFG = {"name": "cap", "start": "2016-03-01", "end": "2016-06-30", "ml": {"enabled": False},
       "strategy": {"name": "top_n", "params": {"n": 3}},
       "rebalance": {"every": "weekly", "min_trade_weight": 0.0}}  # fmt: skip


def test_a_huge_book_is_capped_and_pays_impact_and_the_report_says_so(demo_db, tmp_path):
    big = {**CFG, "initial_cash": 1e10}
    fixed = run_backtest(RunConfig.model_validate(big), store=Store(f"sqlite:///{demo_db}"),
                         save=False)  # fmt: skip
    costs = {"model": "sqrt_impact", "participation_cap": 0.05}
    capped = run_backtest(RunConfig.model_validate({**big, "costs": costs}),
                          store=Store(f"sqlite:///{demo_db}"), save=False)  # fmt: skip
    assert fixed.metrics.get("n_capped_orders") == 0
    assert capped.metrics["n_capped_orders"] > 0
    line = [w for w in capped.warnings if w.startswith("participation cap 5.00%")]
    assert len(line) == 1 and "cancelled" in line[0]
    # every fill within 5 % of its day's volume
    store = Store(f"sqlite:///{demo_db}")
    for t in capped.trades.itertuples():
        vol = store.market.get_prices(t.symbol, end_date=t.date.date()).iloc[-1]["volume"]
        assert t.quantity <= 0.05 * vol
    per_value = [r.trades["slippage"].sum() / r.trades["value"].sum() for r in (fixed, capped)]
    assert per_value[1] > per_value[0]
