"""The exchange's tape: the bars the broker fills at and the portfolio is marked with.

It is loaded once for the whole run (from the store's preloaded arrays) and hands out one day's
bars at a time, moving only forward with the clock (:meth:`BarFeed.advance`). Strategies never see
it; they read the view the runner hands them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np
import pandas as pd

from engine.costs import NO_LIQUIDITY, Liquidity, liquidity_arrays
from sentinel.db import Store
from sentinel.db.cache import column_indices

_INF = float("inf")


class DayBars:
    """One day's open and close per symbol (NaN where a symbol has no bar); with the costs'
    liquidity inputs (the day's volume, ADV and volatility before it) when the run needs them."""

    __slots__ = ("_col", "_symbols", "_memo", "open", "close", "volume", "adv", "sigma")

    def __init__(self, symbols: list[str], col: dict[str, int], open_: np.ndarray,
                 close: np.ndarray, volume: np.ndarray | None = None,
                 adv: np.ndarray | None = None, sigma: np.ndarray | None = None, *,
                 memo: dict | None = None):  # fmt: skip
        self._symbols = symbols
        self._col = col
        #: symbols -> their columns, shared by the days of one feed (the book changes weekly)
        self._memo: dict[tuple[str, ...], tuple[np.ndarray, bool]] = {} if memo is None else memo
        self.open = open_
        self.close = close
        self.volume, self.adv, self.sigma = volume, adv, sigma

    def liquidity(self, symbol: str) -> Liquidity:
        """``symbol``'s volume today, ADV and volatility before today (None where unknown)."""
        j = self._col.get(symbol)
        if j is None or self.volume is None:
            return NO_LIQUIDITY
        vals = [None if a is None or a[j] != a[j] else float(a[j])
                for a in (self.volume, self.adv, self.sigma)]  # fmt: skip
        return Liquidity(*vals)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> DayBars:
        """From a DataFrame indexed by symbol with open and close columns (live feeds)."""
        symbols = [str(s) for s in frame.index]
        col = {s: i for i, s in enumerate(symbols)}
        return cls(symbols, col, frame["open"].to_numpy("float64"),
                   frame["close"].to_numpy("float64"))  # fmt: skip

    def price(self, symbol: str, field: str) -> float | None:
        """A positive, finite price of ``symbol`` today, or None when it has no bar."""
        j = self._col.get(symbol)
        if j is None:
            return None
        v = float((self.open if field == "open" else self.close)[j])
        return v if 0.0 < v < _INF else None  # NaN compares false

    def columns(self, symbols: tuple[str, ...]) -> tuple[np.ndarray, bool]:
        """Each symbol's column (-1: none) and whether any is -1; memoised per feed."""
        hit = self._memo.get(symbols)
        if hit is None:
            if len(self._memo) >= 256:
                self._memo.clear()
            j = column_indices(self._col, symbols)
            hit = self._memo[symbols] = (j, bool((j < 0).any()))
        return hit

    def closes(self) -> Closes:
        """Today's closes as a read-only mapping (no dict is built: most symbols are not held)."""
        return Closes(self)


class Closes:
    """Mapping-like view of a day's closes: ``get``, ``in`` and ``[]`` for symbols with a bar."""

    __slots__ = ("_bars", "_taken")

    def __init__(self, bars: DayBars):
        self._bars = bars
        #: The last take(): its symbols, their closes, and whether every one had a bar.
        self._taken: tuple[tuple[str, ...], np.ndarray, bool] | None = None

    def get(self, symbol: str, default: float | None = None) -> float | None:
        v = self._bars.price(symbol, "close")
        return default if v is None else v

    def __contains__(self, symbol: object) -> bool:
        j = self._bars._col.get(symbol) if isinstance(symbol, str) else None
        return j is not None and 0.0 < float(self._bars.close[j]) < _INF  # the hot path

    def __getitem__(self, symbol: str) -> float:
        v = self._bars.price(symbol, "close")
        if v is None:
            raise KeyError(symbol)
        return v

    def take(self, symbols: Sequence[str]) -> np.ndarray:
        """The closes of ``symbols`` in one gather; NaN where :meth:`get` would give None.

        Read-only; the last answer is kept (a day asks for the held symbols several times).
        """
        key = tuple(symbols)
        if self._taken is not None and self._taken[0] == key:
            return self._taken[1]
        bars = self._bars
        if not len(bars.close):
            return np.full(len(key), np.nan)
        j, unknown = bars.columns(key)
        out = bars.close[j]  # a copy (fancy index)
        bad = ~((out > 0.0) & (out < _INF))
        if unknown:
            bad |= j < 0
        complete = not bad.any()
        if not complete:
            out[bad] = np.nan
        out.flags.writeable = False
        self._taken = (key, out, complete)
        return out

    def have_all(self, symbols: Sequence[str]) -> bool:
        """Whether every one of ``symbols`` has a bar today (no NaN in :meth:`take`), answered
        with the gather, so the day's several checks of the held symbols cost no scan."""
        if not len(self._bars.close):
            return not len(symbols)
        key = tuple(symbols)
        if self._taken is None or self._taken[0] != key:
            self.take(key)
        return self._taken[2]  # type: ignore[index]


class BarFeed:
    def __init__(self, store: Store, symbols: Iterable[str] | None, start: date, end: date,
                 liquidity_days: int | None = None):  # fmt: skip
        cache = store.market.preload()
        wanted = cache.symbols if symbols is None else [s for s in symbols if s in cache.col]
        cols = np.array([cache.col[s] for s in wanted], dtype=np.int64)
        rows = cache.rows(end, start, None)
        # volume, ADV and volatility for the cost model: the rows before each day, from the cache
        self._liq = liquidity_days
        self._first_row = rows.start
        if liquidity_days:
            self._vol_all = cache.values["volume"][:, cols]
            self._close_all = cache.values["close"][:, cols]
        self._days = {d: i for i, d in enumerate(cache.dates[rows].astype(object))}
        self._open = _columns(cache.values["open"][rows], cols)
        self._close = _columns(cache.values["close"][rows], cols)
        self._symbols = list(wanted)
        self._col = {s: i for i, s in enumerate(wanted)}
        self._memo: dict[tuple[str, ...], tuple[np.ndarray, bool]] = {}
        self._empty = DayBars([], {}, np.empty(0), np.empty(0))
        self.current: date | None = None

    def _bars(self, day: date) -> DayBars:
        i = self._days.get(day)
        if i is None:
            return self._empty
        bars = DayBars(self._symbols, self._col, self._open[i], self._close[i], memo=self._memo)
        if self._liq:
            g = self._first_row + i  # the day's row in the whole cache
            n = self._liq
            bars.volume = self._vol_all[g]
            bars.adv, bars.sigma = liquidity_arrays(
                self._vol_all[max(0, g - n) : g], self._close_all[max(0, g - n - 1) : g]
            )
        return bars

    def advance(self, day: date) -> DayBars:
        """Move to ``day`` (never backwards) and return its bars."""
        if self.current is not None and day < self.current:
            raise ValueError(f"the feed only moves forward: {day} after {self.current}")
        self.current = day
        return self._bars(day)


def _columns(block: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``block[:, cols]`` read-only; a view, not a copy, when ``cols`` are all columns in order
    (the usual feed: every symbol)."""
    if len(cols) == block.shape[1] and np.array_equal(cols, np.arange(len(cols))):
        out = block.view()
    else:
        out = block[:, cols]
    out.flags.writeable = False
    return out
