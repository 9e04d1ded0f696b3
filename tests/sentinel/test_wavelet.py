"""Wavelet score: causal trailing window, consistent paths, bounded, safe on flat / short input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import pywt
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel import ml_features as mf
from sentinel import wavelet as wv


def test_short_history_is_none_and_history_default(make_walk) -> None:
    closes = make_walk(wv.WINDOW - 1, seed=1)["close"]
    assert wv.wavelet_components(closes.to_numpy()) is None
    assert wv.wavelet_as_of(closes, closes.index[-1]) is None
    hist = wv.wavelet_history(closes)
    assert not hist["valid"].any()
    assert (hist[["score", "d1", "d4"]].to_numpy() == [0.5, 0.0, 0.0]).all()


def test_flat_prices_are_neutral() -> None:
    result = wv.wavelet_components(np.full(200, 17.0))
    assert result == wv.WaveletResult(0.5, 0.0, 0.0)


def test_trend_direction_and_bounds(make_walk) -> None:
    rng = np.random.default_rng(2)
    up = np.exp(np.cumsum(0.01 + rng.normal(0, 0.005, 128)))
    bull, bear = wv.wavelet_components(up), wv.wavelet_components(up[::-1])
    assert bull.d4 > 0.5 and bull.score > 0.7
    assert bear.d4 < -0.5 and bear.score < 0.3
    jump = np.r_[np.full(127, 10.0) * np.exp(rng.normal(0, 0.01, 127)), 11.0]
    assert wv.wavelet_components(jump).d1 > 0.5
    hist = wv.wavelet_history(make_walk(600, seed=3)["close"])
    valid = hist[hist["valid"]]
    assert valid["score"].between(0, 1).all() and valid[["d1", "d4"]].abs().lt(1).all().all()


def test_haar_last_coefficient_is_recent_momentum() -> None:
    """The reason for Haar: the last level-4 detail is the last 8 vs the previous 8 values."""
    x = np.random.default_rng(4).normal(size=128)
    c4 = pywt.wavedec(x, "haar", level=4)[1]
    assert c4[-1] == pytest.approx((x[-16:-8].sum() - x[-8:].sum()) / 4)


def test_whole_series_transform_would_leak(make_walk) -> None:
    """A whole-series decomposition changes its coefficient at T when the future changes."""
    closes = make_walk(512, seed=5)["close"].to_numpy()
    future = closes.copy()
    future[300:] *= 1.5

    def whole_series_trend_at_t(values: np.ndarray) -> float:
        coeffs = pywt.wavedec(np.log(values), "db4", level=4)
        smooth = pywt.waverec([coeffs[0]] + [np.zeros_like(c) for c in coeffs[1:]], "db4")
        return float(smooth[299])

    assert whole_series_trend_at_t(closes) != pytest.approx(whole_series_trend_at_t(future))
    assert wv.wavelet_as_of(pd.Series(closes), 299) == wv.wavelet_as_of(pd.Series(future), 299)


def test_history_as_of_panel_and_features_agree(real_prices) -> None:
    closes = pd.DataFrame({s: p["close"] for s, p in real_prices.items()})
    day = pd.Timestamp("2016-11-13")
    panel = wv.wavelet_scores_panel(closes, day)
    for symbol, prices in real_prices.items():
        one = wv.wavelet_as_of(prices, day)
        hist = wv.wavelet_history(prices["close"]).loc[:day].iloc[-1]
        feats = mf.features_as_of(prices, day)
        assert tuple(panel.loc[symbol, ["score", "d1", "d4"]]) == pytest.approx(tuple(one))
        assert tuple(hist[["score", "d1", "d4"]]) == pytest.approx(tuple(one), rel=1e-12)
        assert feats[13] == pytest.approx(one.d1) and feats[14] == pytest.approx(one.d4)


def test_panel_handles_gaps_and_short_symbols(make_walk) -> None:
    a, b = make_walk(300, seed=6)["close"], make_walk(300, seed=7)["close"]
    b.iloc[-5] = np.nan  # one gap: uses the last 128 valid closes
    closes = pd.DataFrame({"A": a, "B": b, "C": a.where(a.index > a.index[-50])})
    panel = wv.wavelet_scores_panel(closes, a.index[-1])
    assert panel.loc["A", "valid"] and panel.loc["B", "valid"] and not panel.loc["C", "valid"]
    assert panel.loc["B", "score"] == pytest.approx(wv.wavelet_as_of(b.dropna(), b.index[-1]).score)
    assert panel.loc["C", "score"] == 0.5


def _check_no_lookahead(prices, perturb, t_index: int, seed: int, delete: bool) -> None:
    t = prices.index[t_index]
    base = wv.wavelet_as_of(prices, t)
    base_hist = wv.wavelet_history(prices["close"]).loc[t]
    changed = perturb(prices, t, seed, delete)
    assert wv.wavelet_as_of(changed, t) == base
    pd.testing.assert_series_equal(wv.wavelet_history(changed["close"]).loc[t], base_hist)
    panel = pd.DataFrame({"X": prices["close"], "Y": prices["close"] * 2})
    before = wv.wavelet_scores_panel(panel, t)
    after = wv.wavelet_scores_panel(perturb(panel, t, seed, delete), t)
    pd.testing.assert_frame_equal(after, before)


@settings(max_examples=20, deadline=None)
@given(t_index=st.integers(0, 399), seed=st.integers(0, 10_000), delete=st.booleans())
def test_no_lookahead_synthetic(make_walk, perturb, t_index, seed, delete) -> None:
    _check_no_lookahead(make_walk(400, seed=seed), perturb, t_index, seed, delete)


@settings(max_examples=20, deadline=None)
@given(
    symbol=st.sampled_from(["AAPL", "XOM", "UA"]),
    frac=st.floats(0.0, 0.999),
    seed=st.integers(0, 10_000),
    delete=st.booleans(),
)
def test_no_lookahead_real(real_prices, perturb, symbol, frac, seed, delete) -> None:
    prices = real_prices[symbol].dropna(subset=["close"])
    _check_no_lookahead(prices, perturb, int(frac * len(prices)), seed, delete)
