"""The one-pass exponential averages equal the former ``scipy.signal.lfilter`` code to the bit.

The reference below is the implementation :mod:`sentinel.ml_features` used before (one
``lfilter`` along ``axis=1`` per average); the new code must give the same floats on messy
windows: NaN padding of short histories, flat prices, gaps, zero ranges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import lfilter

from sentinel import ml_features as mf

_N = 14  # RSI and ATR periods
_FAST, _SLOW = 12, 26


def _ref_ema_rows(x: np.ndarray, alpha: float, start: np.ndarray) -> np.ndarray:
    rows = np.arange(x.shape[0])
    first = x[rows, np.minimum(start, x.shape[1] - 1)]
    before = np.arange(x.shape[1])[None, :] < start[:, None]
    filled = np.where(before, first[:, None], x)
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], filled, axis=1, zi=(1 - alpha) * filled[:, :1])
    return y[:, -1]


def _ref_rsi(close: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    diff = np.diff(close, axis=1)
    with np.errstate(invalid="ignore"):
        up = np.where(diff > 0, diff, 0.0)
        down = np.where(diff < 0, -diff, 0.0)
    zeros = np.zeros((close.shape[0], 1))
    start = np.zeros(close.shape[0], dtype=np.int64)
    ema_up = _ref_ema_rows(np.hstack([zeros, up]), 1.0 / _N, start)
    ema_down = _ref_ema_rows(np.hstack([zeros, down]), 1.0 / _N, start)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + ema_up / ema_down)
    rsi = np.where(ema_down == 0, np.where(ema_up == 0, np.nan, 100.0), rsi)
    return np.where(n_valid >= _N, rsi, np.nan)


def _ref_macd(close: np.ndarray, start: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    fast = _ref_ema_rows(close, 2.0 / (_FAST + 1), start)
    slow = _ref_ema_rows(close, 2.0 / (_SLOW + 1), start)
    return np.where(n_valid >= _SLOW, (fast - slow) / close[:, -1], np.nan)


def _ref_atr(high, low, close, start, n_valid) -> np.ndarray:
    prev = np.hstack([np.full((close.shape[0], 1), np.nan), close[:, :-1]])
    true_range = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    seed_cols = np.minimum(start[:, None] + np.arange(_N), close.shape[1] - 1)
    seed = np.take_along_axis(true_range, seed_cols, axis=1).mean(axis=1)
    before = np.arange(close.shape[1])[None, :] < (start + _N)[:, None]
    filled = np.where(before, seed[:, None], true_range)
    alpha = 1.0 / _N
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], filled, axis=1, zi=(1 - alpha) * seed[:, None])
    return np.where(n_valid >= _N, y[:, -1] / close[:, -1], np.nan)


def _assert_same(c: np.ndarray, h: np.ndarray, lo: np.ndarray) -> None:
    n_valid = np.isfinite(c).sum(axis=1)
    start = c.shape[1] - n_valid
    atr, rsi, macd = mf._ema_features(c, h, lo, start, n_valid)
    for got, want in (
        (atr, _ref_atr(h, lo, c, start, n_valid)),
        (rsi, _ref_rsi(c, n_valid)),
        (macd, _ref_macd(c, start, n_valid)),
    ):
        np.testing.assert_array_equal(got, want)


def _series(draw, n: int) -> np.ndarray:
    kind = draw(st.sampled_from(["walk", "flat", "steps", "tiny"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    if kind == "flat":
        return np.full(n, draw(st.floats(0.01, 1e4)))
    if kind == "steps":  # long runs of equal closes with jumps (ties, zero moves)
        return np.repeat(rng.uniform(1, 100, n // 7 + 1), 7)[:n]
    scale = 1e-6 if kind == "tiny" else 1.0
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 0.03, n))) * scale


@st.composite
def _windows(draw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 400))
    close = _series(draw, n)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    high = close * rng.uniform(1.0, 1.05, n)
    low = close * rng.uniform(0.95, 1.0, n)
    if draw(st.booleans()):  # zero ranges on some days
        same = rng.random(n) < 0.3
        high[same] = low[same] = close[same]
    blocks = [mf._windows(a, mf.FEATURE_WINDOW) for a in (close, high, low)]
    if draw(st.booleans()):  # a panel of as-of rows: plain arrays, not window views
        rows = rng.choice(n, size=min(n, 7), replace=False)
        blocks = [np.vstack([b[i] for i in rows]) for b in blocks]
    return blocks[0], blocks[1], blocks[2]


@settings(max_examples=60, deadline=None)
@given(_windows())
def test_ema_features_equal_the_lfilter_reference_to_the_bit(windows) -> None:
    _assert_same(*windows)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0.0, 0.6))
def test_holes_in_high_and_low_give_the_reference_values(seed: int, share: float) -> None:
    """NaN or infinite highs / lows (the true range's fmax paths) behave as before."""
    rng = np.random.default_rng(seed)
    n = 300
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high, low = close * 1.01, close * 0.99
    high[rng.random(n) < share] = np.nan
    low[rng.random(n) < share / 2] = np.inf
    _assert_same(*(mf._windows(a, mf.FEATURE_WINDOW) for a in (close, high, low)))


def test_feature_matrix_columns_use_the_new_averages() -> None:
    """The matrix's ATR, RSI and MACD columns are the reference values (or the defaults)."""
    rng = np.random.default_rng(3)
    n = 320
    close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    prices = pd.DataFrame(
        {"open": close, "high": close * 1.02, "low": close * 0.98, "close": close,
         "volume": rng.uniform(1e5, 1e6, n)},
        index=pd.bdate_range("2020-01-01", periods=n),
    )  # fmt: skip
    matrix = mf.compute_feature_matrix(prices)
    c, h, lo = (
        mf._windows(prices[k].to_numpy(), mf.FEATURE_WINDOW) for k in ("close", "high", "low")
    )
    n_valid = np.isfinite(c).sum(axis=1)
    start = c.shape[1] - n_valid
    for name, want in (
        ("atr_14d", _ref_atr(h, lo, c, start, n_valid)),
        ("rsi_14", _ref_rsi(c, n_valid)),
        ("macd", _ref_macd(c, start, n_valid)),
    ):
        want = np.where(np.isfinite(want), want, mf.DEFAULT_FEATURES[name])
        np.testing.assert_array_equal(matrix[name].to_numpy(), want)


# -- the feature matrix's path: inputs computed once per series, two operations per step --------
def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal floats to the bit (the sign of a zero included); NaN where the reference has NaN."""
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    assert (got[~nan].view(np.int64) == want[~nan].view(np.int64)).all()


def _series_reference(close: np.ndarray, high: np.ndarray, low: np.ndarray) -> tuple:
    """(fast path taken?, the matrix path's values, the lfilter reference's values)."""
    series = [mf._padded(a, mf.FEATURE_WINDOW) for a in (close, high, low)]
    c, h, lo = (mf._windows(a, mf.FEATURE_WINDOW) for a in (close, high, low))
    n_valid = np.isfinite(c).sum(axis=1)
    start = c.shape[1] - n_valid
    warm = start + _N
    seed = np.full(len(close), 1.0)  # only its sign and finiteness matter for the path check
    a1 = mf._EMA_ALPHAS[:, None] - 1.0
    fast = mf._series_steps(tuple(series), mf.FEATURE_WINDOW, warm, seed, a1) is not None
    got = mf._ema_features(c, h, lo, start, n_valid, tuple(series))
    want = (
        _ref_atr(h, lo, c, start, n_valid),
        _ref_rsi(c, n_valid),
        _ref_macd(c, start, n_valid),
    )
    return fast, got, want


@st.composite
def _clean_bars(draw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bars as a feature matrix sees them after cleaning: finite, positive closes."""
    n = draw(st.sampled_from([1, 2, 13, 14, 15, 26, 251, 252, 253, 265, 266, 300, 520]))
    close = _series(draw, n)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    high = close * rng.uniform(1.0, 1.05, n)
    low = close * rng.uniform(0.95, 1.0, n)
    if draw(st.booleans()):  # zero ranges and some high < low days (bad data is kept)
        same = rng.random(n) < 0.3
        high[same] = low[same] = close[same]
        flip = rng.random(n) < 0.1
        high[flip], low[flip] = low[flip], high[flip]
    return close, high, low


@settings(max_examples=80, deadline=None)
@given(_clean_bars())
def test_series_path_equals_the_lfilter_reference_to_the_bit(bars) -> None:
    fast, got, want = _series_reference(*bars)
    assert fast  # clean bars always take the series path
    for g, w in zip(got, want, strict=True):
        _same_bits(g, w)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31))
def test_series_path_falls_back_on_overflowing_inputs(seed: int) -> None:
    """Ranges that overflow to inf (x * 0 is then NaN, not +0) take the general path."""
    rng = np.random.default_rng(seed)
    n = 300
    close = rng.uniform(1.0e308, 1.1e308, n)
    high, low = close * 1.5, -close  # finite, but high - low is inf
    with np.errstate(over="ignore", invalid="ignore"):
        fast, got, want = _series_reference(close, high, low)
    assert not fast
    for g, w in zip(got, want, strict=True):
        _same_bits(g, w)


@st.composite
def _messy_prices(draw) -> pd.DataFrame:
    """A price frame as stored: NaN / zero closes (dropped), holes in high / low, repeats."""
    n = draw(st.integers(1, 420))
    close = _series(draw, n)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    frame = pd.DataFrame(
        {"open": close, "high": close * rng.uniform(1.0, 1.04, n),
         "low": close * rng.uniform(0.96, 1.0, n), "close": close,
         "volume": rng.uniform(1e5, 1e6, n)},
        index=pd.bdate_range("2019-01-01", periods=n),
    )  # fmt: skip
    if draw(st.booleans()):
        frame.loc[rng.random(n) < 0.1, "close"] = rng.choice([np.nan, 0.0, -2.0])
        frame.loc[rng.random(n) < 0.1, "high"] = np.nan
        frame.loc[rng.random(n) < 0.05, "low"] = np.inf
    if draw(st.booleans()) and n > 3:
        frame = pd.concat([frame, frame.iloc[[1, 2]] * 1.01]).sort_index(kind="stable")
    return frame


@settings(max_examples=40, deadline=None)
@given(_messy_prices())
def test_feature_matrix_equals_the_general_path_to_the_bit(prices: pd.DataFrame) -> None:
    """compute_feature_matrix (series path) against _stock_features on plain window matrices."""
    got = mf.compute_feature_matrix(prices)
    dates, cols = mf._clean_arrays(prices)
    if not len(dates):
        assert got.empty
        return
    blocks = [np.array(mf._windows(cols[c], mf.FEATURE_WINDOW)) for c in mf._BLOCK_COLUMNS]
    raw = np.full((len(dates), mf.NUM_FEATURES), np.nan)
    raw[:, :15] = mf._stock_features(*blocks)  # no padded series: the column-by-column steps
    _same_bits(got.to_numpy()[:, :15], mf._finish(raw)[:, :15])
