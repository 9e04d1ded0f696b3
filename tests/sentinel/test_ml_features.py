"""Feature matrix: causal, equal to the one-date path, equal to ``ta``, NaN-free on bad input."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import ta
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel import ml_features as mf

random_walk = random_market = perturb_after = None  # bound by the autouse fixture below


@pytest.fixture(autouse=True, scope="module")
def _helpers(make_walk, make_market, perturb):
    global random_walk, random_market, perturb_after
    random_walk, random_market, perturb_after = make_walk, make_market, perturb


IND = {name: i for i, name in enumerate(mf.FEATURE_NAMES)}


def _sentiment(dates: pd.DatetimeIndex, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(dates), size=len(dates) // 3, replace=False))
    return pd.Series(rng.uniform(-1, 1, picked.size), index=dates[picked])


def _sector(dates: pd.DatetimeIndex, seed: int) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(0, 0.03, len(dates)), index=dates)


def test_feature_contract() -> None:
    assert mf.NUM_FEATURES == 20 == len(mf.FEATURE_NAMES) == len(set(mf.FEATURE_NAMES))
    assert mf.FEATURE_NAMES[:4] == ["return_1d", "return_5d", "return_20d", "return_60d"]
    assert mf.FEATURE_NAMES[-1] == "sector_relative_strength"
    assert list(mf.DEFAULT_FEATURES) == mf.FEATURE_NAMES
    assert mf.DEFAULT_FEATURES["rsi_14"] == 50.0
    assert mf.DEFAULT_FEATURES["market_regime"] == 1.0


# ----------------------------------------------------------------------------- matrix == as-of
def _assert_matrix_equals_as_of(prices, market, sector, sentiment, dates) -> None:
    matrix = mf.compute_feature_matrix(prices, market, sector, sentiment)
    assert matrix.dtypes.eq(np.float64).all()
    assert np.isfinite(matrix.to_numpy()).all()
    for day in dates:
        row = matrix.loc[:day].iloc[-1].to_numpy()
        got = mf.features_as_of(prices, day, market, sector, sentiment)
        np.testing.assert_allclose(got, row, rtol=1e-9, atol=1e-12, err_msg=str(day))


def test_matrix_equals_as_of_real(real_prices, spy) -> None:
    for prices in real_prices.values():
        dates = prices.index
        picks = list(dates[[0, 1, 13, 25, 130, 199, 250, 251, 252, 400, -1]])
        picks += list(dates[::97]) + [pd.Timestamp("2016-07-04"), pd.Timestamp("2015-12-26")]
        _assert_matrix_equals_as_of(prices, spy, _sector(dates, 1), _sentiment(dates, 2), picks)


def test_matrix_equals_as_of_synthetic() -> None:
    prices = random_walk(700, seed=3)
    market = random_market(900, seed=4)
    dates = prices.index
    picks = list(dates[::23]) + [dates[-1], pd.Timestamp("2016-01-02")]
    _assert_matrix_equals_as_of(prices, market, _sector(dates, 5), _sentiment(dates, 6), picks)


def test_panel_equals_as_of(real_prices, spy) -> None:
    day = pd.Timestamp("2016-03-13")  # a Sunday
    panel = mf.features_panel_as_of(real_prices, day, market=spy)
    for symbol, prices in real_prices.items():
        np.testing.assert_allclose(
            panel.loc[symbol].to_numpy(), mf.features_as_of(prices, day, spy), rtol=1e-12
        )


# ----------------------------------------------------------------------------- ta equality
@pytest.mark.parametrize("symbol", ["AAPL", "XOM"])
def test_indicators_equal_ta(real_prices, symbol) -> None:
    prices = real_prices[symbol]
    matrix = mf.compute_feature_matrix(prices)
    for day in prices.index[[30, 140, 251, 260, 600, 900, -1]]:
        w = prices.loc[:day].iloc[-mf.FEATURE_WINDOW :]
        close = w["close"]
        expected = {
            "rsi_14": ta.momentum.RSIIndicator(close, window=14).rsi().iloc[-1],
            "macd": ta.trend.MACD(close).macd().iloc[-1] / close.iloc[-1],
            "bollinger_position": ta.volatility.BollingerBands(close).bollinger_pband().iloc[-1],
            "atr_14d": ta.volatility.AverageTrueRange(w["high"], w["low"], close, window=14)
            .average_true_range()
            .iloc[-1]
            / close.iloc[-1],
        }
        for name, value in expected.items():
            assert matrix.loc[day, name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_indicators_close_to_ta_on_full_history(real_prices) -> None:
    """The 252-row window loses only ~1e-7 of the exponential indicators' memory."""
    prices = real_prices["AAPL"]
    matrix = mf.compute_feature_matrix(prices)
    close = prices["close"]
    rsi = ta.momentum.RSIIndicator(close).rsi()
    atr = ta.volatility.AverageTrueRange(prices["high"], prices["low"], close).average_true_range()
    macd = ta.trend.MACD(close).macd() / close
    later = prices.index[300:]
    np.testing.assert_allclose(matrix.loc[later, "rsi_14"], rsi.loc[later], atol=1e-4)
    np.testing.assert_allclose(matrix.loc[later, "atr_14d"], (atr / close).loc[later], atol=1e-7)
    np.testing.assert_allclose(matrix.loc[later, "macd"], macd.loc[later], atol=1e-7)


def test_atr_warmup_is_default_not_zero() -> None:
    prices = random_walk(40, seed=8)
    matrix = mf.compute_feature_matrix(prices)
    assert (matrix["atr_14d"].iloc[:13] == mf.DEFAULT_FEATURES["atr_14d"]).all()
    assert (matrix["atr_14d"].iloc[13:] != mf.DEFAULT_FEATURES["atr_14d"]).all()
    assert (matrix["rsi_14"].iloc[:13] == 50.0).all()


# ----------------------------------------------------------------------------- hand-checked values
def test_simple_features_by_hand() -> None:
    prices = random_walk(300, seed=9)
    c, v = prices["close"].to_numpy(), prices["volume"].to_numpy()
    row = mf.compute_feature_matrix(prices).iloc[-1]
    assert row["return_5d"] == pytest.approx(c[-1] / c[-6] - 1)
    assert row["return_60d"] == pytest.approx(c[-1] / c[-61] - 1)
    assert row["price_normalized"] == pytest.approx(c[-1] / c[-200:].mean())
    daily = c[1:] / c[:-1] - 1
    assert row["volatility_10d"] == pytest.approx(daily[-10:].std(ddof=1))
    assert row["volatility_30d"] == pytest.approx(daily[-30:].std(ddof=1))
    assert row["volume_normalized"] == pytest.approx(v[-1] / v[-20:].mean())
    assert row["volume_trend"] == pytest.approx(v[-5:].mean() / v[-20:].mean() - 1)


def test_market_features_by_hand() -> None:
    days = pd.bdate_range("2015-01-01", periods=300, name="date")
    rising = pd.Series(np.linspace(100, 160, 300), index=days)
    prices = random_walk(300, seed=10, start=date(2015, 1, 1))
    row = mf.compute_feature_matrix(prices, market=rising).iloc[-1]
    assert row["market_return_20d"] == pytest.approx(160 / rising.iloc[-21] - 1)
    assert row["market_regime"] == 2.0
    falling = pd.Series(rising.to_numpy()[::-1], index=days)
    assert mf.compute_feature_matrix(prices, market=falling).iloc[-1]["market_regime"] == 0.0


# ----------------------------------------------------------------------------- bad input
def _assert_defaults(vector: np.ndarray, names: list[str]) -> None:
    for name in names:
        assert vector[IND[name]] == mf.DEFAULT_FEATURES[name], name


def test_too_little_history_gives_defaults() -> None:
    prices = random_walk(15, seed=11)
    matrix = mf.compute_feature_matrix(prices)
    assert np.isfinite(matrix.to_numpy()).all()
    _assert_defaults(matrix.iloc[0].to_numpy(), mf.FEATURE_NAMES)
    last = matrix.iloc[-1].to_numpy()
    _assert_defaults(last, ["return_20d", "price_normalized", "volatility_30d", "macd"])
    _assert_defaults(last, ["wavelet_d1", "wavelet_d4", "bollinger_position"])
    assert last[IND["return_5d"]] != 0.0
    empty = mf.features_as_of(prices, "2000-01-01")
    np.testing.assert_array_equal(empty, [mf.DEFAULT_FEATURES[n] for n in mf.FEATURE_NAMES])


def test_flat_prices_give_finite_neutral_values() -> None:
    prices = random_walk(300, seed=12)
    prices[["open", "high", "low", "close"]] = 42.0
    market = pd.Series(300.0, index=prices.index)
    row = mf.compute_feature_matrix(prices, market=market).iloc[-1]
    assert np.isfinite(row.to_numpy()).all()
    assert row["volatility_10d"] == 0.0 and row["atr_14d"] == 0.0
    assert row["rsi_14"] == 50.0 and row["bollinger_position"] == 0.5
    assert row["price_normalized"] == 1.0 and row["macd"] == 0.0
    assert row["wavelet_d1"] == 0.0 and row["wavelet_d4"] == 0.0
    assert row["market_volatility"] == 1.0 and row["market_regime"] == 1.0


def test_zero_and_missing_volume_give_defaults() -> None:
    prices = random_walk(100, seed=13)
    prices.iloc[-1, prices.columns.get_loc("volume")] = 0.0
    row = mf.compute_feature_matrix(prices).iloc[-1]
    assert row["volume_normalized"] == 1.0
    prices["volume"] = 0.0
    row = mf.compute_feature_matrix(prices).iloc[-1]
    assert row["volume_normalized"] == 1.0 and row["volume_trend"] == 0.0
    prices["volume"] = np.nan
    assert np.isfinite(mf.compute_feature_matrix(prices).to_numpy()).all()


def test_missing_benchmark_days_use_last_known_value() -> None:
    prices = random_walk(400, seed=14, start=date(2015, 1, 1))
    market = random_market(700, seed=15, start=date(2014, 1, 1))
    gap = market.loc["2016-02-01":"2016-02-04"].index
    holed = market.drop(gap)
    matrix = mf.compute_feature_matrix(prices, market=holed)
    before = holed.loc[:"2016-01-31"].index[-1]
    full_market = mf.compute_feature_matrix(prices, market=market.loc[:before])
    for day in prices.loc["2016-02-01":"2016-02-04"].index:
        np.testing.assert_array_equal(
            matrix.loc[day].to_numpy()[16:19], full_market.loc[before].to_numpy()[16:19]
        )
    stale = mf.compute_feature_matrix(prices, market=market.loc[:"2015-06-01"])
    assert (stale.loc["2015-07-01":, "market_return_20d"] == 0.0).all()  # > 7 days old


def test_no_sector_and_no_sentiment_give_defaults() -> None:
    prices = random_walk(100, seed=16)
    matrix = mf.compute_feature_matrix(prices)
    assert (matrix["sector_relative_strength"] == 0.0).all()
    assert (matrix["sentiment_score"] == 0.0).all()
    closes = pd.DataFrame({"A": prices["close"], "B": prices["close"] * 1.1})
    strength = mf.sector_relative_strength_series(closes, {"A": None}, random_market(100, 1))
    assert (strength["B"] == 0.0).all() and (strength["A"] == 0.0).all()


def test_dirty_rows_are_dropped_not_propagated() -> None:
    prices = random_walk(300, seed=17)
    prices.iloc[100, prices.columns.get_loc("close")] = np.nan
    prices.iloc[101, prices.columns.get_loc("close")] = 0.0
    prices.iloc[102, prices.columns.get_loc("high")] = np.nan
    shuffled = pd.concat([prices.iloc[::-1], prices.iloc[[50]]])  # unsorted + a duplicate
    matrix = mf.compute_feature_matrix(shuffled)
    assert len(matrix) == 298 and matrix.index.is_monotonic_increasing
    assert np.isfinite(matrix.to_numpy()).all()
    np.testing.assert_allclose(
        mf.features_as_of(shuffled, prices.index[150]), matrix.loc[prices.index[150]]
    )


def test_sentiment_as_of_with_staleness_limit() -> None:
    prices = random_walk(60, seed=18, start=date(2016, 1, 4))
    sentiment = pd.Series([0.8, -0.4], index=pd.to_datetime(["2016-01-05", "2016-01-20"]))
    m = mf.compute_feature_matrix(prices, sentiment=sentiment)["sentiment_score"]
    assert m.loc["2016-01-04"] == 0.0 and m.loc["2016-01-05"] == 0.8 and m.loc["2016-01-12"] == 0.8
    assert m.loc["2016-01-13"] == 0.0 and m.loc["2016-01-19"] == 0.0 and m.loc["2016-01-20"] == -0.4


def test_sector_relative_strength_series_by_hand() -> None:
    days = pd.bdate_range("2016-01-01", periods=60, name="date")
    a = pd.Series(np.linspace(10, 20, 60), index=days)
    closes = pd.DataFrame({"A": a, "B": a * 2, "C": a[::-1].to_numpy()}, index=days)
    market = pd.Series(100.0, index=days)
    out = mf.sector_relative_strength_series(closes, {"A": "Tech", "B": "Tech", "C": None}, market)
    assert out["A"].iloc[-1] == pytest.approx(20 / a.iloc[-21] - 1)
    assert out["A"].equals(out["B"]) and (out["C"] == 0).all() and (out["A"].iloc[:20] == 0).all()


# ----------------------------------------------------------------------------- no look-ahead
def _check_no_lookahead(prices, market, t_index: int, seed: int, delete: bool) -> None:
    t = prices.index[t_index]
    sentiment, sector = _sentiment(prices.index, seed), _sector(prices.index, seed + 1)
    base_row = mf.compute_feature_matrix(prices, market, sector, sentiment).loc[t].to_numpy()
    base = mf.features_as_of(prices, t, market, sector, sentiment)
    changed = [
        perturb_after(x, t, seed + i, delete) for i, x in enumerate((prices, market, sector))
    ]
    sent2 = perturb_after(sentiment, t, seed + 7, delete)
    row = mf.compute_feature_matrix(changed[0], changed[1], changed[2], sent2).loc[t].to_numpy()
    np.testing.assert_array_equal(row, base_row)
    np.testing.assert_array_equal(mf.features_as_of(changed[0], t, *changed[1:], sent2), base)


@settings(max_examples=20, deadline=None)
@given(t_index=st.integers(0, 699), seed=st.integers(0, 10_000), delete=st.booleans())
def test_no_lookahead_synthetic(t_index: int, seed: int, delete: bool) -> None:
    prices = random_walk(700, seed=seed)
    market = random_market(900, seed=seed + 1)
    _check_no_lookahead(prices, market, t_index, seed, delete)


@settings(max_examples=20, deadline=None)
@given(
    symbol=st.sampled_from(["AAPL", "XOM", "UA"]),
    frac=st.floats(0.0, 0.999),
    seed=st.integers(0, 10_000),
    delete=st.booleans(),
)
def test_no_lookahead_real(real_prices, spy, symbol, frac, seed, delete) -> None:
    prices = real_prices[symbol].dropna(subset=["close"])
    _check_no_lookahead(prices, spy, int(frac * len(prices)), seed, delete)


@settings(max_examples=15, deadline=None)
@given(t_index=st.integers(0, 299), seed=st.integers(0, 10_000), delete=st.booleans())
def test_sector_strength_no_lookahead(t_index: int, seed: int, delete: bool) -> None:
    closes = pd.DataFrame({f"S{i}": random_walk(300, seed + i)["close"] for i in range(5)})
    closes.iloc[: 40 + seed % 50, 2] = np.nan  # a member listed later
    sectors = {"S0": "X", "S1": "X", "S2": "X", "S3": "Y", "S4": None}
    market = random_market(320, seed, start=date(2014, 12, 1))
    t = closes.index[t_index]
    base = mf.sector_relative_strength_series(closes, sectors, market).loc[t]
    changed = mf.sector_relative_strength_series(
        perturb_after(closes, t, seed, delete), sectors, perturb_after(market, t, seed, delete)
    ).loc[t]
    pd.testing.assert_series_equal(changed, base)
