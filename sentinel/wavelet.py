"""Causal wavelet score of a security as of a date.

Why a trailing window
---------------------
A discrete wavelet transform of a *whole* price series gives every coefficient a support that
straddles its date, and the boundary extension at the series end is replaced by real data as new
prices arrive: the coefficient "at" T changes when prices after T change. A score built from it
uses the future. Here the transform only ever sees the ``WINDOW`` (128) most recent closes ending
at T, so the score as of T is a function of rows dated <= T and nothing else.

Formula
-------
``x`` = log closes of the window (128 values), decomposed with the Haar wavelet over 4 levels
(``pywt.wavedec(x, "haar", level=4)`` -> ``[a4, c4, c3, c2, c1]``). Haar is chosen because, with
a window length that is a multiple of 2**4, no boundary padding is needed: the *last* coefficient of
level j is exactly ``(sum of the previous 2**(j-1) log prices - sum of the last 2**(j-1))
/ 2**(j/2)``
i.e. minus the momentum at scale 2**j of the most recent data, not of a mirrored copy.

Each momentum is measured in units of its random-walk standard deviation: for a random walk with
daily log-return scale ``sigma`` (root mean square of the window's 127 log returns), a level-j
Haar detail has standard deviation ``sigma * sqrt(h**2 / 3 + 1 / 6)`` with ``h = 2**(j-1)``.

- ``z1 = -c1[-1] / (sigma * sqrt(1/2))``: the last daily move (finest detail), short-term momentum.
- ``z4 = -c4[-1] / (sigma * sqrt(64/3 + 1/6))``: mean of the last 8 log prices against the 8
  before (level-4 detail), medium-term momentum.
- ``z5 = (a4[-1] - a4[-2]) / (sqrt(2) * sigma * sqrt(256/3 + 1/6))``: slope of the level-4
  approximation (last 16-day block against the one before), the trend.

Components and score (all bounded, 0 / 0.5 = neutral):

- ``d1 = tanh(z1 / 2)`` in (-1, 1)
- ``d4 = tanh((z4 + z5) / 4)`` in (-1, 1)
- ``score = 0.5 + 0.5 * (0.3 * d1 + 0.7 * d4)`` in (0, 1); the trend weighs more than one day's
  noise.

Flat prices (``sigma == 0``) give ``z = 0``, hence ``d1 = d4 = 0`` and ``score = 0.5``: no division
by zero. Fewer than ``WINDOW`` valid closes: the one-window functions return ``None`` and the
vectorised ones return :data:`DEFAULT_RESULT` (score 0.5, d1 0, d4 0) with ``valid = False``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pywt
from numpy.lib.stride_tricks import sliding_window_view

WAVELET = "haar"
WINDOW = 128
LEVEL = 4
D1_WEIGHT = 0.3
D4_WEIGHT = 0.7
Z_SCALE = 2.0
_FLAT_SIGMA = 1e-12

__all__ = [
    "DEFAULT_RESULT",
    "WINDOW",
    "WaveletResult",
    "components_from_log_windows",
    "wavelet_as_of",
    "wavelet_components",
    "wavelet_history",
    "wavelet_scores_arrays",
    "wavelet_scores_panel",
]


class WaveletResult(NamedTuple):
    """Wavelet score in [0, 1] with its components d1 (short term) and d4 (trend) in [-1, 1]."""

    score: float
    d1: float
    d4: float


DEFAULT_RESULT = WaveletResult(0.5, 0.0, 0.0)
_COLUMNS = ["score", "d1", "d4"]


def _rw_detail_std(level: int) -> float:
    """Standard deviation of a level-``level`` Haar detail of a unit random walk."""
    h = 2 ** (level - 1)
    return float(np.sqrt(h * h / 3.0 + 1.0 / 6.0))


def components_from_log_windows(log_windows: np.ndarray) -> tuple[np.ndarray, ...]:
    """Score, d1 and d4 for each row of a 2-D array of ``WINDOW`` log prices (last column = T).

    Rows holding a NaN give NaN in all three outputs, so callers choose their own default.
    One ``pywt.wavedec`` call handles all rows (``axis=-1``).
    """
    x = np.array(log_windows, dtype=np.float64, ndmin=2)  # writable copy for PyWavelets
    if x.shape[-1] != WINDOW:
        raise ValueError(f"log_windows must have {WINDOW} columns, got {x.shape[-1]}")
    a4, c4, *_, c1 = pywt.wavedec(x, WAVELET, level=LEVEL, axis=-1)
    sigma = np.sqrt(np.mean(np.diff(x, axis=-1) ** 2, axis=-1))
    flat = sigma <= _FLAT_SIGMA
    safe = np.where(flat, 1.0, sigma)
    z1 = -c1[:, -1] / (safe * _rw_detail_std(1))
    z4 = -c4[:, -1] / (safe * _rw_detail_std(LEVEL))
    z5 = (a4[:, -1] - a4[:, -2]) / (np.sqrt(2.0) * safe * _rw_detail_std(LEVEL + 1))
    z1, z4, z5 = (np.where(flat, 0.0, z) for z in (z1, z4, z5))
    d1 = np.tanh(z1 / Z_SCALE)
    d4 = np.tanh((z4 + z5) / (2.0 * Z_SCALE))
    score = 0.5 + 0.5 * (D1_WEIGHT * d1 + D4_WEIGHT * d4)
    return score, d1, d4


def _clean_closes(closes: pd.Series) -> pd.Series:
    """Sorted, unique dates; only finite, positive closes (a missing bar is no bar)."""
    s = pd.Series(np.asarray(closes, dtype=np.float64), index=pd.DatetimeIndex(closes.index))
    if not s.index.is_monotonic_increasing:
        s = s.sort_index(kind="stable")
    if not s.index.is_unique:
        s = s[~s.index.duplicated(keep="last")]
    values = s.to_numpy()
    ok = np.isfinite(values) & (values > 0)
    return s if ok.all() else s[ok]


def _closes_of(prices_or_closes: pd.DataFrame | pd.Series) -> pd.Series:
    if isinstance(prices_or_closes, pd.DataFrame):
        return prices_or_closes["close"]
    return prices_or_closes


def wavelet_components(closes_window: np.ndarray | pd.Series) -> WaveletResult | None:
    """Wavelet result of the last ``WINDOW`` closes of ``closes_window`` (oldest first).

    Returns ``None`` when fewer than ``WINDOW`` finite, positive closes are given: a shorter
    window would change the decomposition's meaning rather than just its precision.
    """
    values = np.asarray(closes_window, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size < WINDOW:
        return None
    score, d1, d4 = components_from_log_windows(np.log(values[-WINDOW:])[None, :])
    return WaveletResult(float(score[0]), float(d1[0]), float(d4[0]))


def wavelet_as_of(
    prices_or_closes: pd.DataFrame | pd.Series, as_of: str | pd.Timestamp
) -> WaveletResult | None:
    """Wavelet result from the ``WINDOW`` last valid closes dated on or before ``as_of``."""
    s = _clean_closes(_closes_of(prices_or_closes))
    end = s.index.searchsorted(pd.Timestamp(as_of), side="right")
    return wavelet_components(s.to_numpy()[max(0, end - WINDOW) : end])


def wavelet_history(closes: pd.Series) -> pd.DataFrame:
    """Score, d1, d4 as of every valid date of ``closes``, each from its own trailing window.

    Vectorised: one sliding-window view and one ``wavedec`` call. Rows with fewer than
    ``WINDOW`` closes so far get :data:`DEFAULT_RESULT` and ``valid = False``.
    """
    s = _clean_closes(_closes_of(closes))
    out = pd.DataFrame(
        {"score": 0.5, "d1": 0.0, "d4": 0.0, "valid": False},
        index=s.index.rename("date"),
    )
    if len(s) >= WINDOW:
        windows = sliding_window_view(np.log(s.to_numpy()), WINDOW)
        score, d1, d4 = components_from_log_windows(windows)
        rows = slice(WINDOW - 1, None)
        out.iloc[rows, 0], out.iloc[rows, 1], out.iloc[rows, 2] = score, d1, d4
        out.iloc[rows, 3] = True
    return out


def wavelet_scores_panel(closes: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Score, d1, d4 and ``valid`` per symbol as of ``as_of`` from a date x symbol close panel.

    Symbols whose last ``WINDOW`` rows are all valid share one ``wavedec`` call; the few with
    gaps (missing or non-positive closes) are handled one by one on their own valid closes.
    """
    values, valid = wavelet_scores_arrays(closes, as_of)
    # one frame from the arrays: writing into a frame per column cost more than the transform
    out = pd.DataFrame(values, columns=_COLUMNS, index=pd.Index(closes.columns, name="symbol"))
    out["valid"] = valid
    return out


def wavelet_scores_arrays(
    closes: pd.DataFrame, as_of: str | pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`wavelet_scores_panel` as arrays: (score, d1, d4) per column of ``closes`` (one row
    each, in column order) and ``valid``; for callers that need no frame (the planner)."""
    panel = closes.sort_index() if not closes.index.is_monotonic_increasing else closes
    end = panel.index.searchsorted(pd.Timestamp(as_of), side="right")
    tail = panel.iloc[max(0, end - WINDOW) : end].to_numpy(dtype=np.float64).T  # symbol x time
    values = np.empty((len(panel.columns), 3))
    values[:] = DEFAULT_RESULT
    valid = np.zeros(len(panel.columns), dtype=bool)
    if tail.shape[1] == WINDOW:
        with np.errstate(invalid="ignore", divide="ignore"):
            valid = np.all(np.isfinite(tail) & (tail > 0), axis=1)
    if valid.any():
        values[valid] = np.column_stack(components_from_log_windows(np.log(tail[valid])))
    for i in np.flatnonzero(~valid):
        result = wavelet_components(panel.iloc[:end, i].to_numpy(dtype=np.float64))
        if result is not None:
            values[i] = result
            valid[i] = True
    return values, valid
