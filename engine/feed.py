"""The exchange's tape: the bars the broker fills at and the portfolio is marked with.

It is loaded once for the whole run (from the store's preloaded arrays) and hands out one day's
bars at a time, moving only forward with the clock (:meth:`BarFeed.advance`). Strategies never see
it; they read the view the runner hands them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from sentinel.db import Store


class DayBars:
    """One day's open and close per symbol (NaN where a symbol has no bar)."""

    __slots__ = ("_col", "_symbols", "open", "close")

    def __init__(self, symbols: list[str], col: dict[str, int], open_: np.ndarray,
                 close: np.ndarray):  # fmt: skip
        self._symbols = symbols
        self._col = col
        self.open = open_
        self.close = close

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
        return v if v > 0 and v == v and v != float("inf") else None

    def closes(self) -> Closes:
        """Today's closes as a read-only mapping (no dict is built: most symbols are not held)."""
        return Closes(self)


class Closes:
    """Mapping-like view of a day's closes: ``get``, ``in`` and ``[]`` for symbols with a bar."""

    __slots__ = ("_bars",)

    def __init__(self, bars: DayBars):
        self._bars = bars

    def get(self, symbol: str, default: float | None = None) -> float | None:
        v = self._bars.price(symbol, "close")
        return default if v is None else v

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self._bars.price(symbol, "close") is not None

    def __getitem__(self, symbol: str) -> float:
        v = self._bars.price(symbol, "close")
        if v is None:
            raise KeyError(symbol)
        return v


class BarFeed:
    def __init__(self, store: Store, symbols: Iterable[str] | None, start: date, end: date):
        cache = store.market.preload()
        wanted = cache.symbols if symbols is None else [s for s in symbols if s in cache.col]
        cols = np.array([cache.col[s] for s in wanted], dtype=np.int64)
        rows = cache.rows(end, start, None)
        self._days = {d: i for i, d in enumerate(cache.dates[rows].astype(object))}
        self._open = cache.values["open"][rows][:, cols]
        self._close = cache.values["close"][rows][:, cols]
        self._symbols = list(wanted)
        self._col = {s: i for i, s in enumerate(wanted)}
        self._empty = DayBars([], {}, np.empty(0), np.empty(0))
        self.current: date | None = None

    def _bars(self, day: date) -> DayBars:
        i = self._days.get(day)
        if i is None:
            return self._empty
        return DayBars(self._symbols, self._col, self._open[i], self._close[i])

    def advance(self, day: date) -> DayBars:
        """Move to ``day`` (never backwards) and return its bars."""
        if self.current is not None and day < self.current:
            raise ValueError(f"the feed only moves forward: {day} after {self.current}")
        self.current = day
        return self._bars(day)
