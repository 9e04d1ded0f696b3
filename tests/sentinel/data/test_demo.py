"""The demo universe: deterministic, valid bars, listings that exercise universe-as-of reads."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from sentinel.data.demo import MARKET_SYMBOL, generate_demo_universe, install_demo


def test_same_seed_same_market_other_seed_other_market():
    a = generate_demo_universe(seed=3, n_symbols=8, start=date(2020, 1, 1), end=date(2020, 12, 31))
    b = generate_demo_universe(seed=3, n_symbols=8, start=date(2020, 1, 1), end=date(2020, 12, 31))
    c = generate_demo_universe(seed=4, n_symbols=8, start=date(2020, 1, 1), end=date(2020, 12, 31))
    pd.testing.assert_frame_equal(a.prices, b.prices)
    assert not np.allclose(a.prices["close"].to_numpy()[:100], c.prices["close"].to_numpy()[:100])


def test_bars_are_valid_and_plausible(demo_universe):
    p = demo_universe.prices
    assert (p[["open", "high", "low", "close"]] > 0).all().all()
    assert (p["high"] >= p[["open", "close"]].max(axis=1)).all()
    assert (p["low"] <= p[["open", "close"]].min(axis=1)).all()
    assert (p["volume"] >= 0).all()
    rets = p.sort_values(["symbol", "date"]).groupby("symbol")["close"].pct_change().dropna()
    assert 0.005 < rets.std() < 0.05  # daily volatility of real stocks, roughly
    assert rets.kurt() > 1.0  # fat tails
    assert set(demo_universe.regimes.unique()) <= {0, 1, 2}
    assert demo_universe.benchmark["symbol"].eq(MARKET_SYMBOL).all()


def test_install_is_idempotent_and_sets_universe(store, demo_universe):
    install_demo(store, demo_universe)
    n = store.db.count("prices")
    install_demo(store, demo_universe)
    assert store.db.count("prices") == n == len(demo_universe.prices)
    secs = demo_universe.securities
    late = secs.sort_values("universe_from").iloc[-1]
    assert late.symbol not in store.market.universe_symbols(secs.universe_from.min().date())
    assert store.market.get_security(late.symbol).sector == late.sector
