"""The simulated broker: next-open fills, costs, long-only, no overdraft, sells before buys."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from engine.broker import SimulatedBroker, orders_for_targets
from engine.config import CostsConfig
from engine.feed import DayBars
from engine.portfolio import Order, Portfolio

D0, D1 = date(2020, 1, 2), date(2020, 1, 3)


def _bars(**prices: tuple[float, float]) -> DayBars:
    return DayBars.from_frame(pd.DataFrame(prices, index=["open", "close"]).T)


def test_fill_at_next_open_with_commission_and_slippage():
    pf = Portfolio(cash=10_000.0)
    br = SimulatedBroker(CostsConfig(commission_bps=10, min_commission=1.0, slippage_bps=100))
    br.submit([Order("r:1:AAA", "AAA", 10, D0)])
    (fill,) = br.execute(D1, _bars(AAA=(100.0, 120.0)), pf)
    assert fill.price == pytest.approx(101.0)  # open + 1% slippage
    assert fill.commission == pytest.approx(1.01)  # 10 bps of 1010 > the 1.0 minimum
    assert fill.slippage == pytest.approx(10.0)
    assert pf.cash == pytest.approx(10_000 - 1010 - 1.01)
    assert pf.mark(D1, {"AAA": 120.0}) == pytest.approx(pf.cash + 1200)


def test_next_close_fill_and_minimum_commission():
    pf = Portfolio(cash=10_000.0)
    br = SimulatedBroker(CostsConfig(commission_bps=1, min_commission=5, slippage_bps=0,
                                     fill="next_close"))  # fmt: skip
    br.submit([Order("o", "AAA", 1, D0)])
    (fill,) = br.execute(D1, _bars(AAA=(100.0, 120.0)), pf)
    assert fill.price == 120.0 and fill.commission == 5.0


def test_sells_first_then_buys_scaled_to_cash_never_overdraft():
    pf = Portfolio(cash=100.0, positions={"AAA": 10.0}, last_price={"AAA": 50.0})
    br = SimulatedBroker(CostsConfig(commission_bps=0, min_commission=0, slippage_bps=0))
    br.submit([Order("b", "BBB", 100, D0), Order("s", "AAA", -10, D0)])
    fills = br.execute(D1, _bars(AAA=(50.0, 50.0), BBB=(10.0, 10.0)), pf)
    assert [f.symbol for f in fills] == ["AAA", "BBB"]
    assert fills[1].quantity == 60  # 100 + 500 cash buys 60 of the 100 asked
    assert pf.cash >= 0 and "AAA" not in pf.positions


def test_long_only_and_missing_bars_cancel():
    pf = Portfolio(cash=1000.0, positions={"AAA": 2.0}, last_price={"AAA": 10.0})
    br = SimulatedBroker(CostsConfig(min_commission=0))
    br.submit([Order("s", "AAA", -5, D0), Order("x", "ZZZ", 1, D0)])
    fills = br.execute(D1, _bars(AAA=(10.0, 10.0)), pf)
    assert fills[0].quantity == -2 and "AAA" not in pf.positions
    assert [(o.symbol, why) for _, o, why in br.cancelled] == [("ZZZ", "no bar")]


def test_fractional_shares_spend_the_cash_exactly():
    pf = Portfolio(cash=1000.0)
    br = SimulatedBroker(CostsConfig(commission_bps=10, min_commission=0, slippage_bps=0,
                                     fractional=True))  # fmt: skip
    br.submit([Order("b", "AAA", 50.0, D0)])  # 50 x 30 = 1500 > 1000 of cash
    (fill,) = br.execute(D1, _bars(AAA=(30.0, 30.0)), pf)
    assert fill.quantity == pytest.approx(1000 / (30 * 1.001))
    assert pf.cash == pytest.approx(0.0, abs=1e-9)
    w = pd.Series({"AAA": 0.5})
    (o,) = orders_for_targets("r", D0, w, Portfolio(cash=100.0), {"AAA": 3.0}, fractional=True)
    assert o.quantity == pytest.approx(50 / 3)


def test_orders_for_targets_are_whole_shares_with_stable_ids():
    pf = Portfolio(cash=10_000.0, positions={"OLD": 5.0}, last_price={"OLD": 100.0})
    w = pd.Series({"AAA": 0.5, "BBB": 0.25})
    orders = orders_for_targets("run1", D0, w, pf, {"AAA": 33.0, "BBB": 70.0, "OLD": 100.0})
    got = {o.symbol: o.quantity for o in orders}
    assert got == {"AAA": 159.0, "BBB": 37.0, "OLD": -5.0}  # floor(0.5*10500/33), ...
    assert {o.order_id for o in orders} == {"run1:2020-01-02:AAA", "run1:2020-01-02:BBB",
                                            "run1:2020-01-02:OLD"}  # fmt: skip
