"""The 20 ML features, computed causally and identically for training and inference.

Point-in-time design
--------------------
Every feature as of a day T is a function of the ``FEATURE_WINDOW`` (252) most recent valid price
rows dated <= T (fewer when the history is shorter), and of the benchmark / sentiment / sector
values known on or before T. Both paths run the *same* code on the *same* window:

- :func:`compute_feature_matrix` builds, for every date, the trailing window as one row of a 2-D
  ``sliding_window_view`` (earlier dates are NaN-padded on the left) and evaluates all features
  row-wise with numpy (the exponential averages step through the window's columns for all rows
  at once, with ``scipy.signal.lfilter``'s float operations, their inputs computed once per
  series rather than once per column: see :func:`_ema_features`).
- :func:`features_as_of` takes the last ``FEATURE_WINDOW`` rows <= T, pads them the same way and
  evaluates the same function on that single row. Equality with the matrix row is by construction.

Exponential indicators (RSI, MACD, ATR) therefore restart at the first row of the trailing window,
exactly as ``ta`` does when given that window; a start at the beginning of the full history would
make a feature depend on how much history a caller happened to load (train/serve skew). After 252
rows the initial value weighs at most (25/27)**226 ~ 3e-8 of the MACD's slow EMA and less for
the others, so the values also agree with ``ta`` on the full history to ~1e-7 relative.
Callers should load at least ``FEATURE_WINDOW`` rows (e.g. ``get_prices(days=...)`` of ~13
months); with fewer rows, the features are those of the shorter window.

The RSI, MACD, Bollinger and ATR formulas replicate ``ta`` 0.11 (``RSIIndicator``, ``MACD``,
``BollingerBands``, ``AverageTrueRange``) in numpy, because calling ``ta`` per date or per symbol
(its ATR is a Python loop) cannot meet the as-of budget (500 symbols < 0.5 s); the tests check them
against ``ta``'s own output on real data. Two deliberate departures: ATR's 13 warm-up zeros and an
RSI of a window with no price move at all (``ta`` says 100) are treated as unknown / neutral.

Features (daily bars; no annualisation, scale-free where a price level would leak the scale):

- ``return_Nd`` = close_T / close_{T-N rows} - 1.
- ``price_normalized`` = close / SMA(200) (needs 200 rows).
- ``volatility_Nd`` = sample std (ddof 1) of the last N daily simple returns (daily, not
  annualised).
- ``atr_14d`` = Wilder ATR(14) / close.  ``macd`` = (EMA12 - EMA26) / close.
- ``rsi_14`` = Wilder RSI(14) in [0, 100].  ``bollinger_position`` = (close - lower) / (upper -
  lower) of the 20-day, 2-sigma (ddof 0) band; 0.5 when the band has no width.
- ``volume_normalized`` = volume_T / mean(volume, 20d); ``volume_trend`` = mean(volume, 5d) /
  mean(volume, 20d) - 1. A zero or missing volume on T or a zero mean is unknown.
- ``wavelet_d1``, ``wavelet_d4``: :mod:`sentinel.wavelet` components of the last 128 closes.
- ``sentiment_score``: last sentiment value dated on or before T, if at most 7 days old.
- ``market_return_20d``: benchmark close / close 20 benchmark rows earlier - 1.
- ``market_volatility``: std of the last 20 benchmark daily returns / std of the last 252 (1 =
  usual level).
- ``market_regime``: 2 (bull) if benchmark close > SMA(200) and its 20d return > 0, 0 (bear) if
  close < SMA(200) and 20d return < 0, else 1 (sideways).
- ``sector_relative_strength``: last value on or before T of a given series (sector 20d return
  minus market 20d return, see :func:`sector_relative_strength_series`), at most 7 days old.
  With a sector history the sectors are those in force on each date, never a later one.

Benchmark features are computed on the benchmark's own calendar and then read as of each stock
date (last benchmark date <= T, at most 7 days old): a missing benchmark day reuses the last known
value, never a later one. Anything that cannot be computed takes its :data:`DEFAULT_FEATURES`
value, so outputs never hold NaN or inf.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from sentinel import wavelet

FEATURE_NAMES: list[str] = [
    "return_1d",
    "return_5d",
    "return_20d",
    "return_60d",
    "price_normalized",
    "volatility_10d",
    "volatility_30d",
    "atr_14d",
    "volume_normalized",
    "volume_trend",
    "rsi_14",
    "macd",
    "bollinger_position",
    "wavelet_d1",
    "wavelet_d4",
    "sentiment_score",
    "market_return_20d",
    "market_volatility",
    "market_regime",
    "sector_relative_strength",
]
NUM_FEATURES = len(FEATURE_NAMES)

#: Value used when a feature cannot be computed (warm-up, flat or missing input). Chosen to read
#: as "nothing unusual": no return, price at its average, a typical large-cap daily volatility /
#: range of 2 %, usual volume, RSI and Bollinger mid-points, neutral wavelet and sentiment, usual
#: market volatility, sideways market, sector in line with the market.
DEFAULT_FEATURES: dict[str, float] = {
    "return_1d": 0.0,
    "return_5d": 0.0,
    "return_20d": 0.0,
    "return_60d": 0.0,
    "price_normalized": 1.0,
    "volatility_10d": 0.02,
    "volatility_30d": 0.02,
    "atr_14d": 0.02,
    "volume_normalized": 1.0,
    "volume_trend": 0.0,
    "rsi_14": 50.0,
    "macd": 0.0,
    "bollinger_position": 0.5,
    "wavelet_d1": wavelet.DEFAULT_RESULT.d1,
    "wavelet_d4": wavelet.DEFAULT_RESULT.d4,
    "sentiment_score": 0.0,
    "market_return_20d": 0.0,
    "market_volatility": 1.0,
    "market_regime": 1.0,
    "sector_relative_strength": 0.0,
}

FEATURE_WINDOW = 252  # price rows a feature as of T may use (the largest need: SMA200, EWMs)
MARKET_WINDOW = 253  # benchmark rows: 252 daily returns for the long-run volatility
ASOF_TOLERANCE = pd.Timedelta(days=7)  # how old a benchmark / sentiment / sector value may be

_DEFAULT_VECTOR = np.array([DEFAULT_FEATURES[name] for name in FEATURE_NAMES], dtype=np.float64)
_PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]
_BLOCK_COLUMNS = ["close", "high", "low", "volume"]  # argument order of _stock_features
_MARKET_NAMES = ["market_return_20d", "market_volatility", "market_regime"]
_RSI_N, _ATR_N, _BB_N, _MACD_FAST, _MACD_SLOW = 14, 14, 20, 12, 26
_TINY = 1e-12

__all__ = [
    "ASOF_TOLERANCE",
    "DEFAULT_FEATURES",
    "FEATURE_NAMES",
    "FEATURE_WINDOW",
    "NUM_FEATURES",
    "clean_price_frame",
    "compute_feature_matrix",
    "features_as_of",
    "features_panel_as_of",
    "market_feature_frame",
    "sector_relative_strength_series",
]


# ----------------------------------------------------------------------------- input hygiene
def _clean_arrays(prices: pd.DataFrame) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Clean dates and float columns as numpy arrays (see :func:`clean_price_frame`)."""
    df = prices
    if not isinstance(df.index, pd.DatetimeIndex):
        df = df.set_axis(pd.DatetimeIndex(df.index))
    if not df.index.is_monotonic_increasing:
        df = df.sort_index(kind="stable")
    if not df.index.is_unique:
        df = df[~df.index.duplicated(keep="last")]
    cols = {c: np.asarray(df[c], dtype=np.float64) for c in _PRICE_COLUMNS if c in df}
    close = cols["close"]
    keep = np.isfinite(close) & (close > 0)
    for c in ("open", "high", "low"):
        values = cols.get(c, close)
        cols[c] = np.where(np.isfinite(values), values, close)
    cols.setdefault("volume", np.full(len(close), np.nan))
    if keep.all():
        return pd.DatetimeIndex(df.index), cols
    return pd.DatetimeIndex(df.index[keep]), {c: v[keep] for c, v in cols.items()}


def clean_price_frame(prices: pd.DataFrame) -> pd.DataFrame:
    """Sorted unique dates, float columns, and only rows with a finite positive close.

    A row without a usable close is no bar at all (dropped); a missing open / high / low is taken
    as the close; a missing volume stays NaN (the volume features then use their defaults).
    Duplicated dates keep the last row. Rows are only removed, never changed across dates, so
    cleaning the rows <= T gives the same rows as cleaning everything and then cutting at T.
    """
    index, cols = _clean_arrays(prices)
    return pd.DataFrame({c: cols[c] for c in _PRICE_COLUMNS}, index=index.rename("date"))


def _clean_series(series: pd.Series | None) -> pd.Series | None:
    """Sorted unique dates with finite values, or ``None`` when nothing usable is left."""
    if series is None:
        return None
    if (
        isinstance(series.index, pd.DatetimeIndex)
        and series.dtype == np.float64
        and series.index.is_monotonic_increasing
        and series.index.is_unique
        and len(series)
        and np.isfinite(series.to_numpy()).all()
    ):
        return series
    s = pd.Series(np.asarray(series, dtype=np.float64), index=pd.DatetimeIndex(series.index))
    if not s.index.is_monotonic_increasing:
        s = s.sort_index(kind="stable")
    if not s.index.is_unique:
        s = s[~s.index.duplicated(keep="last")]
    s = s[np.isfinite(s.to_numpy())]
    return s if len(s) else None


def _tail_rows(
    df: pd.DataFrame, as_of: pd.Timestamp, n: int
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """The last ``n`` clean rows dated <= ``as_of`` (cleans only a tail when it can)."""
    if isinstance(df.index, pd.DatetimeIndex) and df.index.is_monotonic_increasing:
        end = df.index.searchsorted(as_of, side="right")
        start = max(0, end - 2 * n)
        index, cols = _clean_arrays(df.iloc[start:end])
        if len(index) >= n or start == 0:
            return index[-n:], {c: v[-n:] for c, v in cols.items()}
    index, cols = _clean_arrays(df)
    end = index.searchsorted(as_of, side="right")
    return index[max(0, end - n) : end], {c: v[max(0, end - n) : end] for c, v in cols.items()}


# ----------------------------------------------------------------------------- window algebra
def _padded(values: np.ndarray, width: int) -> np.ndarray:
    """``values`` as float64 after ``width - 1`` NaNs (the series :func:`_windows` slides over)."""
    return np.concatenate([np.full(width - 1, np.nan), np.asarray(values, dtype=np.float64)])


def _windows(values: np.ndarray, width: int) -> np.ndarray:
    """One trailing window per date (row i ends at ``values[i]``), NaN-padded on the left."""
    return sliding_window_view(_padded(values, width), width)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where the denominator is (numerically) zero or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(den) > _TINY, num / den, np.nan)


#: The exponential averages: RSI up / down moves (Wilder), MACD fast / slow EMA of the close,
#: ATR (Wilder) of the true range.
_EMA_ALPHAS = np.array(
    [1.0 / _RSI_N, 1.0 / _RSI_N, 2.0 / (_MACD_FAST + 1), 2.0 / (_MACD_SLOW + 1), 1.0 / _ATR_N]
)


def _true_range(h: np.ndarray, lo: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """``ta``'s true range; a missing previous close (NaN) leaves high - low (fmax skips NaN)."""
    return np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))


def _ema_features(
    c: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    start: np.ndarray,
    n_valid: np.ndarray,
    padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ATR(14) / close, RSI(14) and MACD / close per window, as ``ta`` on each window.

    ``ta.volatility.AverageTrueRange``, ``ta.momentum.RSIIndicator`` and ``ta.trend.MACD.macd``
    (scaled by the price level). RSI's first move counts as 0; the MACD EMAs start at the
    window's first valid close (earlier columns hold that close, which leaves the EMA unchanged);
    the ATR starts at the mean of the first 14 true ranges (earlier columns hold that mean).

    The five averages were ``scipy.signal.lfilter([a], [1, a - 1], ..., axis=1)`` per window
    matrix; here they step through the windows' columns together, replaying lfilter's
    transposed direct form II in its float operations and order (``y = z + a * x``,
    ``z = x * 0 - y * (a - 1)``), so the values are lfilter's to the bit (the tests compare
    them). A column of a ``sliding_window_view`` is a contiguous slice of the series, so a step
    reads a few kB instead of streaming window matrices through memory, and importing
    ``scipy.signal`` (~1 s) is no longer needed.

    ``padded``: the NaN-padded close, high and low series whose :func:`_windows` are ``c``, ``h``
    and ``lo`` (a feature matrix). The steps then take their inputs from :func:`_series_steps`
    (computed once per series, not once per window column).
    """
    n, width = c.shape
    rows = np.arange(n)
    first = c[rows, np.minimum(start, width - 1)]
    seed_cols = np.minimum(start[:, None] + np.arange(_ATR_N), width - 1)
    prev_cols = seed_cols - 1
    seed_prev = np.where(prev_cols >= 0, c[rows[:, None], np.maximum(prev_cols, 0)], np.nan)
    seed_h, seed_lo = h[rows[:, None], seed_cols], lo[rows[:, None], seed_cols]
    seed = _true_range(seed_h, seed_lo, seed_prev).mean(axis=1)
    b0 = _EMA_ALPHAS[:, None]
    a1 = b0 - 1.0
    x = np.empty((5, n))
    y = np.empty((5, n))
    t = np.empty((5, n))
    z = np.empty((5, n))  # set from the first column's inputs
    no_prev = np.full(n, np.nan)
    warm = start + _ATR_N  # columns before this hold the ATR seed
    with np.errstate(invalid="ignore"):  # NaN compares and inf * 0, silent as in lfilter
        steps = _series_steps(padded, width, warm, seed, a1) if padded is not None else None
        for k in range(width):
            if steps is not None and k:
                steps.step(k, y, z)
                continue
            ck, prev = c[:, k], (c[:, k - 1] if k else no_prev)
            if k:
                diff = ck - prev
                np.copyto(x[0], np.where(diff > 0, diff, 0.0))
                np.copyto(x[1], np.where(diff < 0, -diff, 0.0))
            else:
                x[:2] = 0.0
            np.copyto(x[2], np.where(k < start, first, ck))
            x[3] = x[2]
            np.copyto(x[4], np.where(k < warm, seed, _true_range(h[:, k], lo[:, k], prev)))
            if k == 0:
                z = (1 - _EMA_ALPHAS)[:, None] * x
            np.multiply(b0, x, out=y)
            np.add(z, y, out=y)
            np.multiply(x, 0.0, out=z)
            np.multiply(y, a1, out=t)
            np.subtract(z, t, out=z)
    up, down, fast, slow, atr = y
    last = c[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100.0 - 100.0 / (1.0 + up / down)
    rsi = np.where(down == 0, np.where(up == 0, np.nan, 100.0), rsi)
    return (
        np.where(n_valid >= _ATR_N, atr / last, np.nan),
        np.where(n_valid >= _RSI_N, rsi, np.nan),
        np.where(n_valid >= _MACD_SLOW, (fast - slow) / last, np.nan),
    )


class _SeriesSteps:
    """The recursion's inputs of every window column of one padded series, precomputed.

    Column ``k`` of a window matrix is ``series[k : k + n]``, so the RSI moves, the filled
    closes and the true ranges of all columns are slices of one array each, and ``b0 * x`` is
    computed once over the series. Rows still in their ATR warm-up (``k < warm``: a prefix of
    the rows, since ``warm`` does not increase) read their own seed instead of the true range.

    The inputs are finite and >= +0 (checked by :func:`_series_steps`), so ``x * 0`` is +0 and
    no state is ever -0 or negative: ``z = x * 0 - y * a1`` is then ``y * -a1`` to the bit
    (``0 - v`` is ``-v`` for every ``v`` but +0, and ``y * a1`` is never +0 as ``a1 < 0``), and
    a step is two operations instead of five.
    """

    def __init__(self, bx: np.ndarray, seed: np.ndarray, warm: np.ndarray, a1: np.ndarray):
        n = len(seed)
        self.bx, self.n, self.na1 = bx, n, -a1
        self.bseed = _EMA_ALPHAS[4] * seed
        # rows [0, in_warmup[k]) are in the ATR warm-up at column k
        self.in_warmup = np.searchsorted(-warm, -np.arange(bx.shape[1] - n + 1), side="left")

    def step(self, k: int, y: np.ndarray, z: np.ndarray) -> None:
        """``y = z + b0 * x; z = x * 0 - y * a1`` for window column ``k`` (``k >= 1``)."""
        np.add(z, self.bx[:, k : k + self.n], out=y)
        m = int(self.in_warmup[k])
        if m:
            np.add(z[4, :m], self.bseed[:m], out=y[4, :m])
        np.multiply(y, self.na1, out=z)


def _series_steps(
    padded: tuple[np.ndarray, np.ndarray, np.ndarray],
    width: int,
    warm: np.ndarray,
    seed: np.ndarray,
    a1: np.ndarray,
) -> _SeriesSteps | None:
    """The steps of :func:`_ema_features` for windows of ``padded`` (None: not applicable).

    Applies when the series are finite after the ``width - 1`` padding NaNs (each window's
    valid part is then its right end: the filled close of a padding column is the series'
    first close, and the warm-up ends fall with the row) and every input the steps read is
    finite and >= +0 (see :class:`_SeriesSteps`); else the caller takes the general path.
    """
    cp, hp, lp = padded
    body = slice(width - 1, None)
    if not (
        np.isfinite(cp[body]).all()
        and np.isfinite(hp[body]).all()
        and np.isfinite(lp[body]).all()
        and (np.diff(warm) <= 0).all()
    ):
        return None
    length = len(cp)
    x = np.empty((5, length))
    diff = np.empty(length)
    diff[0] = np.nan
    np.subtract(cp[1:], cp[:-1], out=diff[1:])
    x[0] = np.where(diff > 0, diff, 0.0)
    x[1] = np.where(diff < 0, -diff, 0.0)
    x[2] = cp
    x[2, : width - 1] = cp[width - 1]
    x[3] = x[2]
    x[4, :width] = 0.0  # the padding's true ranges: always in the warm-up, never read
    x[4, width:] = _true_range(hp[width:], lp[width:], cp[width - 1 : -1])
    if not _plain(x) or not _plain(seed):
        return None
    return _SeriesSteps(np.multiply(_EMA_ALPHAS[:, None], x), seed, warm, a1)


def _plain(values: np.ndarray) -> bool:
    """Every value finite and >= +0 (no -0)."""
    return bool(np.isfinite(values).all() and not np.signbit(values).any())


def _bollinger_position(close: np.ndarray) -> np.ndarray:
    """(close - lower) / (upper - lower) of ``ta``'s 20-day, 2-sigma band; 0.5 for zero width."""
    last = close[:, -_BB_N:]
    mean = last.mean(axis=1)
    std = last.std(axis=1)
    pos = _ratio(close[:, -1] - (mean - 2.0 * std), 4.0 * std)
    flat = np.isfinite(std) & (std <= _TINY * np.abs(mean))
    return np.where(flat, 0.5, pos)


def _volume_features(volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Volume against its 20-day mean, and the 5-day mean against the 20-day mean."""
    mean20 = volume[:, -20:].mean(axis=1)
    mean5 = volume[:, -5:].mean(axis=1)
    today = volume[:, -1]
    with np.errstate(invalid="ignore"):
        usable = (mean20 > 0) & (today > 0)
    normalized = np.where(usable, _ratio(today, mean20), np.nan)
    trend = _ratio(mean5, mean20) - 1.0
    return normalized, trend


def _stock_features(
    c: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    v: np.ndarray,
    padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Features 0..14 (everything computed from the stock's own bars), one row per window.

    ``padded``: see :func:`_ema_features` (the same values, computed faster).
    """
    width = c.shape[1]
    if padded is not None:  # finite closes per window from one running count of the series
        counts = np.concatenate(([0], np.cumsum(np.isfinite(padded[0]))))
        n_valid = counts[width:] - counts[:-width]
    else:
        n_valid = np.isfinite(c).sum(axis=1)
    start = width - n_valid
    last = c[:, -1]
    returns = c[:, -30:] / c[:, -31:-1] - 1.0
    if padded is not None:  # the log of each close once, not once per window it falls in
        log_c = sliding_window_view(np.log(padded[0]), width)[:, -wavelet.WINDOW :]
    else:
        log_c = np.log(c[:, -wavelet.WINDOW :])
    wav_score, d1, d4 = wavelet.components_from_log_windows(log_c)
    del wav_score
    volume_normalized, volume_trend = _volume_features(v)
    atr, rsi, macd = _ema_features(c, h, lo, start, n_valid, padded)
    columns = [
        last / c[:, -2] - 1.0,
        last / c[:, -6] - 1.0,
        last / c[:, -21] - 1.0,
        last / c[:, -61] - 1.0,
        last / c[:, -200:].mean(axis=1),
        returns[:, -10:].std(axis=1, ddof=1),
        returns.std(axis=1, ddof=1),
        atr,
        volume_normalized,
        volume_trend,
        rsi,
        macd,
        _bollinger_position(c),
        d1,
        d4,
    ]
    return np.column_stack(columns)


def _market_features(m: np.ndarray) -> np.ndarray:
    """market_return_20d, market_volatility, market_regime per benchmark window (NaN = unknown)."""
    last = m[:, -1]
    ret20 = last / m[:, -21] - 1.0
    returns = m[:, 1:] / m[:, :-1] - 1.0
    vol_ratio = _ratio(returns[:, -20:].std(axis=1, ddof=1), returns.std(axis=1, ddof=1))
    sma200 = m[:, -200:].mean(axis=1)
    regime = np.where((last > sma200) & (ret20 > 0), 2.0, 1.0)
    regime = np.where((last < sma200) & (ret20 < 0), 0.0, regime)
    regime = np.where(np.isfinite(sma200) & np.isfinite(ret20), regime, np.nan)
    return np.column_stack([ret20, vol_ratio, regime])


def _finish(raw: np.ndarray) -> np.ndarray:
    """Replace NaN / inf by the documented defaults, column by column."""
    return np.where(np.isfinite(raw), raw, _DEFAULT_VECTOR[None, :])


# ----------------------------------------------------------------------------- as-of alignment
def market_feature_frame(market: pd.Series, dates: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Benchmark features on the benchmark's own dates (NaN = not computable yet).

    With ``dates``, only the benchmark rows needed to read those dates as of are evaluated.
    """
    m = _clean_series(market)
    if m is None:
        return pd.DataFrame(columns=_MARKET_NAMES, dtype=np.float64)
    rows = np.arange(len(m))
    if dates is not None and len(dates):
        lo = m.index.searchsorted(dates[0] - ASOF_TOLERANCE, side="left")
        hi = m.index.searchsorted(dates[-1], side="right")
        rows = rows[max(0, lo - 1) : hi]
    values = _market_features(_windows(m.to_numpy(), MARKET_WINDOW)[rows])
    return pd.DataFrame(values, index=m.index[rows], columns=_MARKET_NAMES)


def _align(frame: pd.DataFrame | pd.Series, dates: pd.DatetimeIndex) -> np.ndarray:
    """Values known on or before each date (at most ``ASOF_TOLERANCE`` old), else NaN."""
    if len(frame) == 0:
        return np.full((len(dates),) + frame.shape[1:], np.nan)
    aligned = frame.reindex(dates, method="ffill", tolerance=ASOF_TOLERANCE)
    return aligned.to_numpy(dtype=np.float64)


def _value_as_of(series: pd.Series | None, when: pd.Timestamp) -> float:
    """Last value dated <= ``when`` if at most ``ASOF_TOLERANCE`` old, else NaN."""
    if series is None:
        return np.nan
    i = series.index.searchsorted(when, side="right") - 1
    if i < 0 or when - series.index[i] > ASOF_TOLERANCE:
        return np.nan
    return float(series.iloc[i])


def _market_as_of(market: pd.Series | None, when: pd.Timestamp) -> np.ndarray:
    """The three benchmark features as of ``when`` from the benchmark rows <= ``when`` only."""
    if market is None:
        return np.full(3, np.nan)
    end = market.index.searchsorted(when, side="right")
    if end == 0 or when - market.index[end - 1] > ASOF_TOLERANCE:
        return np.full(3, np.nan)
    tail = market.to_numpy()[max(0, end - MARKET_WINDOW) : end]
    return _market_features(_windows(tail, MARKET_WINDOW)[-1:])[0]


# ----------------------------------------------------------------------------- public API
def compute_feature_matrix(
    prices: pd.DataFrame,
    market: pd.Series | None = None,
    sector_strength: pd.Series | None = None,
    sentiment: pd.Series | None = None,
    *,
    market_features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """All features for every date of ``prices``, each row as of that day's close.

    Parameters
    ----------
    prices : DataFrame indexed by date with open, high, low, close, volume.
    market : benchmark closes indexed by date (any calendar; read as of each stock date).
    sector_strength : sector 20d return minus market 20d return, indexed by date.
    sentiment : daily sentiment scores indexed by the date they became known.
    market_features : ``market_feature_frame(market)`` computed once by a caller that scores
        many symbols against the same benchmark (each benchmark row's features depend on that
        row's window only, so the rows read are the same); ``market`` is then not read.

    Returns
    -------
    DataFrame indexed by ``date`` (the cleaned stock dates), columns :data:`FEATURE_NAMES`,
    float64, no NaN / inf. Row T equals ``features_as_of(prices, T, ...)``.
    """
    dates, cols = _clean_arrays(prices)
    raw = np.full((len(dates), NUM_FEATURES), np.nan)
    if len(dates):
        series = {c: _padded(cols[c], FEATURE_WINDOW) for c in _BLOCK_COLUMNS}
        blocks = [sliding_window_view(series[c], FEATURE_WINDOW) for c in _BLOCK_COLUMNS]
        padded = (series["close"], series["high"], series["low"])
        raw[:, :15] = _stock_features(*blocks, padded=padded)
        sent = _clean_series(sentiment)
        if sent is not None:
            raw[:, 15] = _align(sent, dates)
        if market_features is not None:
            raw[:, 16:19] = _align(market_features, dates)
        elif market is not None:
            raw[:, 16:19] = _align(market_feature_frame(market, dates), dates)
        strength = _clean_series(sector_strength)
        if strength is not None:
            raw[:, 19] = _align(strength, dates)
    return pd.DataFrame(_finish(raw), index=dates.rename("date"), columns=FEATURE_NAMES)


def features_as_of(
    prices: pd.DataFrame,
    as_of: str | pd.Timestamp,
    market: pd.Series | None = None,
    sector_strength: pd.Series | None = None,
    sentiment: pd.Series | None = None,
) -> np.ndarray:
    """Feature vector (shape ``(NUM_FEATURES,)``) as of ``as_of`` from rows dated <= ``as_of``.

    On a non-trading day the last bar before it is used, and the benchmark, sentiment and sector
    values are read as of that bar's date, so the vector equals the matrix row of that bar. With
    no bar at all, the defaults are returned.
    """
    index, tail = _tail_rows(prices, pd.Timestamp(as_of), FEATURE_WINDOW)
    if len(index) == 0:
        return _DEFAULT_VECTOR.copy()
    when = pd.Timestamp(index[-1])
    blocks = [_windows(tail[c], FEATURE_WINDOW)[-1:] for c in _BLOCK_COLUMNS]
    raw = np.empty(NUM_FEATURES)
    raw[:15] = _stock_features(*blocks)[0]
    raw[15] = _value_as_of(_clean_series(sentiment), when)
    raw[16:19] = _market_as_of(_clean_series(market), when)
    raw[19] = _value_as_of(_clean_series(sector_strength), when)
    return _finish(raw[None, :])[0]


def features_panel_as_of(
    prices_by_symbol: Mapping[str, pd.DataFrame],
    as_of: str | pd.Timestamp,
    market: pd.Series | None = None,
    sector_strength: pd.DataFrame | None = None,
    sentiment: Mapping[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """``features_as_of`` for many symbols at once (symbol x FEATURE_NAMES).

    The windows of all symbols are stacked and evaluated in one pass; benchmark features are
    computed once per distinct last-bar date. ``sector_strength`` is a date x symbol frame as
    returned by :func:`sector_relative_strength_series`.
    """
    when_ts = pd.Timestamp(as_of)
    symbols = list(prices_by_symbol)
    rows = np.full((len(symbols), NUM_FEATURES), np.nan)
    blocks: list[list[np.ndarray]] = [[], [], [], []]
    have: list[int] = []
    last_dates: list[pd.Timestamp] = []
    for i, symbol in enumerate(symbols):
        index, tail = _tail_rows(prices_by_symbol[symbol], when_ts, FEATURE_WINDOW)
        if len(index) == 0:
            continue
        have.append(i)
        last_dates.append(pd.Timestamp(index[-1]))
        for block, column in zip(blocks, _BLOCK_COLUMNS, strict=True):
            block.append(_windows(tail[column], FEATURE_WINDOW)[-1])
    if have:
        rows[have, :15] = _stock_features(*(np.vstack(b) for b in blocks))
    clean_market = _clean_series(market)
    market_cache: dict[pd.Timestamp, np.ndarray] = {}
    for i, when in zip(have, last_dates, strict=True):
        symbol = symbols[i]
        if when not in market_cache:
            market_cache[when] = _market_as_of(clean_market, when)
        rows[i, 16:19] = market_cache[when]
        if sentiment is not None and symbol in sentiment:
            rows[i, 15] = _value_as_of(_clean_series(sentiment[symbol]), when)
        if sector_strength is not None and symbol in sector_strength:
            rows[i, 19] = _value_as_of(_clean_series(sector_strength[symbol]), when)
    return pd.DataFrame(
        _finish(rows), index=pd.Index(symbols, name="symbol"), columns=FEATURE_NAMES
    )


def sector_relative_strength_series(
    closes: pd.DataFrame,
    sectors: Mapping[str, str | None] | pd.DataFrame,
    market: pd.Series,
) -> pd.DataFrame:
    """Sector 20d return minus market 20d return, per date and symbol, from data <= each date.

    Each sector is an equal-weight index of its members' daily returns (members without a close
    that day are left out; a day with no member counts as flat). The market 20d return is taken
    on the benchmark's own calendar and read as of each date. A symbol without a sector, or a
    date where either side is not computable yet, gets the default 0.

    ``sectors`` is one sector per symbol, or a date x symbol frame of the sector in force on each
    date (point-in-time sector history): a symbol then counts in, and reads, the sector it had on
    each day, so a sector change dated after T changes nothing up to T.
    """
    panel = closes.sort_index().astype(np.float64)
    panel = panel.where(panel > 0)
    dates = pd.DatetimeIndex(panel.index)
    daily = panel.pct_change(fill_method=None)
    market_ret = np.full(len(dates), np.nan)
    clean_market = _clean_series(market)
    if clean_market is not None:
        market_ret = _align(market_feature_frame(clean_market, dates)["market_return_20d"], dates)
    out = pd.DataFrame(
        DEFAULT_FEATURES["sector_relative_strength"],
        index=dates.rename("date"),
        columns=panel.columns,
    )
    if isinstance(sectors, pd.DataFrame):
        return _dated_sector_strength(panel, daily, sectors, market_ret, out)
    by_sector: dict[str, list[str]] = {}
    for symbol in panel.columns:
        sector = sectors.get(symbol)
        if isinstance(sector, str) and sector:
            by_sector.setdefault(sector, []).append(symbol)
    for members in by_sector.values():
        sector_daily = daily[members].mean(axis=1, skipna=True)
        started = panel[members].notna().any(axis=1).cummax()
        strength = _sector_minus_market(sector_daily, started, market_ret)
        out[members] = np.repeat(strength[:, None], len(members), axis=1)
    return out


def _sector_minus_market(
    sector_daily: pd.Series, started: pd.Series, market_ret: np.ndarray
) -> np.ndarray:
    """The sector index's 20d return minus the market's (0 where either is unknown)."""
    index = (1.0 + sector_daily.fillna(0.0)).cumprod().where(started)
    strength = (index / index.shift(20) - 1.0).to_numpy() - market_ret
    return np.where(np.isfinite(strength), strength, 0.0)


def _dated_sector_strength(
    panel: pd.DataFrame,
    daily: pd.DataFrame,
    sectors: pd.DataFrame,
    market_ret: np.ndarray,
    out: pd.DataFrame,
) -> pd.DataFrame:
    """:func:`sector_relative_strength_series` with each day's own membership."""
    by_date = sectors.set_axis(pd.DatetimeIndex(sectors.index), axis=0)
    by_date = by_date.reindex(index=pd.DatetimeIndex(panel.index), columns=panel.columns)
    labels = by_date.to_numpy(dtype=object)
    valid = np.array([isinstance(v, str) and bool(v) for v in labels.ravel()], dtype=bool)
    valid = valid.reshape(labels.shape)
    values = out.to_numpy(copy=True)
    for sector in sorted({v for v in labels[valid]}):
        member = valid & (labels == sector)
        sector_daily = daily.where(member).mean(axis=1, skipna=True)
        started = pd.Series((panel.notna() & member).any(axis=1).to_numpy(), index=panel.index)
        strength = _sector_minus_market(sector_daily, started.cummax(), market_ret)
        values = np.where(member, strength[:, None], values)
    return pd.DataFrame(values, index=out.index, columns=out.columns)
