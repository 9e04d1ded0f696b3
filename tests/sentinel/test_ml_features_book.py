"""Features computed for many symbols against one benchmark equal the one-symbol path."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel import ml_features as mf


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_stock=st.integers(1, 320), lag=st.integers(-400, 400))
def test_precomputed_market_features_give_the_same_matrix(seed, n_stock, lag):
    """A book passes the benchmark's features once; each stock's rows read the same values."""
    rng = np.random.default_rng(seed)
    bench_days = pd.bdate_range("2019-01-01", periods=700)
    bench_days = bench_days[rng.random(len(bench_days)) > 0.05]  # benchmark holidays
    market = pd.Series(3000 * np.exp(np.cumsum(rng.normal(0, 0.01, len(bench_days)))), bench_days)
    days = pd.bdate_range(bench_days[0] + pd.Timedelta(days=int(lag) + 400), periods=n_stock)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
    prices = pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                           "volume": np.ones(len(days))}, index=days)  # fmt: skip
    once = mf.market_feature_frame(market)
    pd.testing.assert_frame_equal(
        mf.compute_feature_matrix(prices, market=market, market_features=once),
        mf.compute_feature_matrix(prices, market=market),
        check_exact=True,
    )
