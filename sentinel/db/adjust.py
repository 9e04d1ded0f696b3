"""Cumulative adjustment factors of corporate actions, for reads adjusted point in time.

With ``G(t)`` the product of the price factors of the actions dated <= t (a split of r new shares
per old one gives 1/r, a dividend d on a previous close P gives 1 - d/P), the bars as of T are
``raw(t) * G(T) / G(t)``: ``raw / G`` depends only on actions up to each row's own date, and the
one scale ``G(T)`` only on actions up to T (:mod:`sentinel.data.actions` imports the actions).
"""

from __future__ import annotations

import numpy as np


def adjustment_factors(
    dates: np.ndarray, col: dict[str, int], close: np.ndarray, actions: list[tuple]
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative price factors ``G`` and split factors ``S`` (date x symbol) from actions.

    ``dates`` are the sorted trading days (datetime64[D]) of the raw ``close`` array; an action on
    a day without a session takes effect on the next one. ``actions`` are
    ``(symbol, date, split, dividend)``; symbols without bars are ignored.
    """
    step = np.ones_like(close)
    split_step = np.ones_like(close)
    rows = np.arange(close.shape[0])[:, None]
    last_bar = np.maximum.accumulate(np.where(np.isnan(close), -1, rows), axis=0)  # per row
    for symbol, day, split, dividend in actions:
        j = col.get(symbol)
        if j is None:
            continue
        t = int(np.searchsorted(dates, np.datetime64(day, "D"), side="left"))
        if t >= len(dates):
            continue
        k = last_bar[t - 1, j] if t > 0 else -1
        prev = close[k, j] if k >= 0 else np.nan
        factor = 1.0 / split
        if dividend > 0 and prev > 0:
            factor -= dividend / prev
        if factor > 0:
            step[t, j] *= factor
        split_step[t, j] *= split
    return np.cumprod(step, axis=0), np.cumprod(split_step, axis=0)
