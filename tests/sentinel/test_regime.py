"""Regime: quote-based score and dampening; HMM regime filtered causally and stored by date."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import GaussianHMM
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel import regime as rg

# small windows keep HMM fits fast in tests; the logic is the same as with the defaults
FAST = {"min_rows": 250, "fit_window_rows": 300, "filter_window_rows": 60, "n_iter": 20}


class FakeStore:
    """Holds one frame per symbol; returns bars dated <= end_date, records upserts."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames
        self.rows: dict[tuple[str, str], tuple[int, str, float]] = {}
        self.reads: list[tuple[str, object]] = []

    def get_prices(self, symbol, days=None, end_date=None) -> pd.DataFrame:
        self.reads.append((symbol, end_date))
        frame = self.frames[symbol]
        if end_date is not None:
            frame = frame.loc[: pd.Timestamp(end_date)]
        return frame if days is None else frame.iloc[-days:]

    def upsert_regime_state(self, symbol, date, regime, regime_name, confidence) -> None:
        self.rows[(symbol, date)] = (regime, regime_name, confidence)


# ----------------------------------------------------------------------------- quote-based
def test_quote_data_and_score_directions(make_walk) -> None:
    days = pd.bdate_range("2015-01-01", periods=300, name="date")
    up = pd.DataFrame({"close": np.linspace(50, 100, 300)}, index=days)
    q = rg.quote_data_from_prices(up)
    assert q["price"] == 100 and q["ma20"] == pytest.approx(up["close"].iloc[-20:].mean())
    assert q["position_52w"] == 1.0 and q["return_20d"] > 0 and q["ma200"] is not None
    assert rg.regime_score(q) > 0.5
    down = pd.DataFrame({"close": np.linspace(100, 50, 300)}, index=days)
    assert rg.regime_score(rg.quote_data_from_prices(down)) < -0.5
    flat = pd.DataFrame({"close": np.full(300, 20.0)}, index=days)
    assert rg.regime_score(rg.quote_data_from_prices(flat)) == 0.0
    assert rg.regime_score(rg.quote_data_from_prices(up.iloc[:0])) == 0.0
    short = rg.quote_data_from_prices(up.iloc[:30])
    assert short["ma200"] is None and -1 <= rg.regime_score(short) <= 1


def test_dampening_and_adjusted_return() -> None:
    assert rg.regime_dampening(0.0) == 1.0 and rg.regime_dampening(-1.0) == 0.5
    assert rg.regime_dampening(float("nan")) == 1.0
    bear = {"price": 80.0, "ma50": 90.0, "ma200": 100.0, "return_20d": -0.06}
    score = rg.regime_score(bear)
    assert score < 0
    adjusted, s, factor = rg.get_regime_adjusted_return(0.05, bear)
    assert s == score and factor == pytest.approx(1 - 0.5 * abs(score))
    assert adjusted == pytest.approx(0.05 * factor) and adjusted < 0.05
    assert rg.get_regime_adjusted_return(-0.05, bear) == (-0.05, score, 1.0)


# ----------------------------------------------------------------------------- HMM
def test_forward_filter_matches_hmmlearn_at_last_step(make_walk) -> None:
    """At the last step the smoothed posterior is the filtered one: compare with hmmlearn."""
    close = make_walk(500, seed=1)["close"].to_numpy()
    obs = rg._observations(close, 20)
    model = rg.fit_regime_model(obs, n_iter=20)
    hmm = GaussianHMM(n_components=3, covariance_type="diag")
    hmm.startprob_, hmm.transmat_, hmm.means_ = model.startprob, model.transmat, model.means
    hmm.covars_ = model.variances
    scaled = (obs - model.scaler_mean) / model.scaler_std
    for end in (50, 200, len(obs)):
        expected = hmm.predict_proba(scaled[:end])[-1]
        np.testing.assert_allclose(rg.filtered_probabilities(model, obs[:end]), expected, atol=1e-9)


def test_states_ordered_by_mean_return(make_walk) -> None:
    model = rg.fit_regime_model(rg._observations(make_walk(600, seed=2)["close"].to_numpy(), 20))
    by_regime = [model.means[model.state_regime == r, 0][0] for r in (0, 1, 2)]
    assert by_regime == sorted(by_regime)


def test_detect_short_history_none_and_flat_sideways(make_walk) -> None:
    prices = make_walk(400, seed=3)
    store = FakeStore({"S": prices})
    detector = rg.RegimeDetector(store, **FAST)
    assert detector.detect_regime_as_of("S", "2015-06-01") is None  # < 250 rows before cut-off
    assert detector.detect_regime_as_of("S", "2013-01-01") is None  # no rows at all
    result = detector.detect_regime_as_of("S", str(prices.index[-1].date()))
    assert set(result) == {"regime", "regime_name", "confidence"}
    assert rg.REGIME_NAMES[result["regime"]] == result["regime_name"]
    assert 1 / 3 <= result["confidence"] <= 1
    assert store.reads[-1] == ("S", prices.index[-1].date())  # the store is asked with a date
    flat = prices.assign(close=10.0)
    flat_result = rg.RegimeDetector(FakeStore({"F": flat}), **FAST).detect_regime_as_of(
        "F", str(prices.index[-1].date())
    )
    assert flat_result == {"regime": 1, "regime_name": "sideways", "confidence": 1.0}
    with pytest.raises(TypeError):
        rg.RegimeDetector(store, min_row=3)


def test_store_regime_state_for_date_calls_upsert(make_walk) -> None:
    store = FakeStore({})
    detector = rg.RegimeDetector(store, store)
    detector.store_regime_state_for_date("S", "2016-03-04", 2, "bull", 0.9)
    detector.store_regime_state_for_date("S", "2016-03-04", 0, "bear", 0.7)
    assert store.rows == {("S", date(2016, 3, 4)): (0, "bear", 0.7)}  # parsed once, at the API
    with pytest.raises(ValueError):
        detector.store_regime_state_for_date("S", "2016-03-04", 2, "bear", 0.9)
    with pytest.raises(ValueError):
        detector.store_regime_state_for_date("S", "2016-03-04", 2, "bull", 1.5)


def test_history_equals_as_of_and_refits_monthly(make_walk) -> None:
    prices = make_walk(420, seed=4)
    cache: dict = {}
    history = rg.regime_history(prices, cache=cache, **FAST)
    assert len(history) > 0 and history.index.min() >= pd.Timestamp("2016-01-01")
    assert len(cache) == history.index.to_period("M").nunique()
    for day in history.index[::29]:
        one = rg.regime_as_of(prices, day, **FAST)
        assert one["regime"] == history.loc[day, "regime"]
        assert one["confidence"] == pytest.approx(history.loc[day, "confidence"], abs=1e-9)


def _check_hmm_no_lookahead(prices, perturb, t, seed, delete) -> None:
    date_str = str(t.date())
    base = rg.RegimeDetector(FakeStore({"S": prices}), **FAST).detect_regime_as_of("S", date_str)
    changed = perturb(prices, t, seed, delete)
    unfiltered = FakeStore({"S": changed})
    unfiltered.get_prices = lambda symbol, days=None, end_date=None: changed  # leaks the future
    got = rg.RegimeDetector(unfiltered, **FAST).detect_regime_as_of("S", date_str)
    assert got == base


@settings(max_examples=15, deadline=None)
@given(t_index=st.integers(230, 399), seed=st.integers(0, 10_000), delete=st.booleans())
def test_hmm_no_lookahead_synthetic(make_walk, perturb, t_index, seed, delete) -> None:
    prices = make_walk(400, seed=seed)
    _check_hmm_no_lookahead(prices, perturb, prices.index[t_index], seed, delete)


@settings(max_examples=15, deadline=None)
@given(t_index=st.integers(240, 420), seed=st.integers(0, 10_000), delete=st.booleans())
def test_hmm_no_lookahead_real(real_prices, perturb, t_index, seed, delete) -> None:
    prices = real_prices["XOM"].iloc[:450]
    _check_hmm_no_lookahead(prices, perturb, prices.index[t_index], seed, delete)


def _check_quote_no_lookahead(prices, perturb, t, seed, delete) -> None:
    base = rg.quote_data_as_of(prices, t)
    changed = rg.quote_data_as_of(perturb(prices, t, seed, delete), t)
    assert changed == base
    assert rg.get_regime_adjusted_return(0.03, changed) == rg.get_regime_adjusted_return(0.03, base)


@settings(max_examples=20, deadline=None)
@given(t_index=st.integers(0, 399), seed=st.integers(0, 10_000), delete=st.booleans())
def test_quote_regime_no_lookahead_synthetic(make_walk, perturb, t_index, seed, delete) -> None:
    prices = make_walk(400, seed=seed)
    _check_quote_no_lookahead(prices, perturb, prices.index[t_index], seed, delete)


@settings(max_examples=20, deadline=None)
@given(symbol=st.sampled_from(["AAPL", "UA"]), frac=st.floats(0, 0.999), seed=st.integers(0, 99))
def test_quote_regime_no_lookahead_real(real_prices, perturb, symbol, frac, seed) -> None:
    prices = real_prices[symbol].dropna(subset=["close"])
    t = prices.index[int(frac * len(prices))]
    _check_quote_no_lookahead(prices, perturb, t, seed, delete=seed % 2 == 0)
