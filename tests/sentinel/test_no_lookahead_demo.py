"""No look-ahead on the demo universe: changing or deleting everything after T changes nothing as
of T (features on both paths, wavelet, quote regime, HMM regime).

The same properties are proven on real bars and random walks in the neighbouring test modules;
the demo universe adds late listings, a delisting, a market index on its own and sector factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from sentinel import ml_features as mf
from sentinel import regime as rg
from sentinel.wavelet import wavelet_as_of

BAR_COLUMNS = ["open", "high", "low", "close", "volume"]
SYMBOLS = ["DAA", "DAH", "DAI", "DAK"]  # full history, delisted, two late listings


def _perturb_long(frame: pd.DataFrame, t: pd.Timestamp, seed: int, delete: bool) -> pd.DataFrame:
    """Delete every row dated after ``t``, or give every value in it a random positive value."""
    after = frame["date"] > t
    if delete:
        return frame[~after]
    out = frame.copy()
    rng = np.random.default_rng(seed)
    for col in BAR_COLUMNS:
        scale = float(frame[col].median())
        out.loc[after, col] = rng.uniform(0.2, 5.0, int(after.sum())) * scale
    return out


def _signals(universe, prices: pd.DataFrame, bench: pd.DataFrame, symbol: str, t: pd.Timestamp):
    """Everything sentinel computes for ``symbol`` as of ``t`` from these frames."""
    bars = prices[prices["symbol"] == symbol].set_index("date")[BAR_COLUMNS]
    market = bench.set_index("date")["close"]
    closes = prices.pivot(index="date", columns="symbol", values="close")
    sectors = dict(zip(universe.securities["symbol"], universe.securities["sector"], strict=True))
    strength = mf.sector_relative_strength_series(closes, sectors, market)[symbol]
    matrix = mf.compute_feature_matrix(bars, market, strength)
    quote = rg.quote_data_as_of(bars, t)
    with threadpool_limits(limits=1):  # KMeans' OpenMP threads only slow these tiny fits down
        hmm = rg.regime_as_of(bars, t)
    return {
        "matrix_row": matrix.loc[t].to_numpy(),
        "as_of": mf.features_as_of(bars, t, market, strength),
        "wavelet": wavelet_as_of(bars, t),
        "quote": quote,
        "regime_score": rg.regime_score(quote),
        "adjusted": rg.get_regime_adjusted_return(0.04, quote),
        "hmm": hmm,
    }


@pytest.fixture(scope="module")
def demo(demo_universe):
    return demo_universe


@settings(max_examples=25, deadline=None)
@given(
    symbol=st.sampled_from(SYMBOLS),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
    delete=st.booleans(),
)
@example(symbol="DAA", frac=0.97, seed=1, delete=False)  # late: the HMM has enough history
@example(symbol="DAA", frac=0.9, seed=2, delete=True)
@example(symbol="DAH", frac=1.0, seed=3, delete=False)  # the delisting day
def test_nothing_after_t_matters(demo, symbol: str, frac: float, seed: int, delete: bool) -> None:
    dates = demo.prices.loc[demo.prices["symbol"] == symbol, "date"].sort_values().to_numpy()
    t = pd.Timestamp(dates[min(int(frac * len(dates)), len(dates) - 1)])
    base = _signals(demo, demo.prices, demo.benchmark, symbol, t)
    prices = _perturb_long(demo.prices, t, seed, delete)
    bench = _perturb_long(demo.benchmark, t, seed + 1, delete)
    got = _signals(demo, prices, bench, symbol, t)
    np.testing.assert_array_equal(got["matrix_row"], base["matrix_row"])
    np.testing.assert_array_equal(got["as_of"], base["as_of"])
    np.testing.assert_allclose(base["as_of"], base["matrix_row"], rtol=1e-9, atol=1e-12)
    for key in ("wavelet", "quote", "regime_score", "adjusted", "hmm"):
        assert got[key] == base[key], key


def test_late_dates_have_an_hmm_regime(demo) -> None:
    """Guards the property above against proving only ``None == None`` for the HMM."""
    bars = demo.prices[demo.prices["symbol"] == "DAA"].set_index("date")[BAR_COLUMNS]
    with threadpool_limits(limits=1):
        assert rg.regime_as_of(bars, bars.index[int(0.97 * len(bars))]) is not None
        assert rg.regime_as_of(bars, bars.index[int(0.5 * len(bars))]) is None
