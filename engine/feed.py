"""The exchange's tape: the bars the broker fills at and the portfolio is marked with.

It is loaded once for the whole run (one query instead of one per day) and hands out one day's
bars at a time, only for the day the clock is on: asking for another day raises
:class:`~sentinel.errors.LookAheadError`. Strategies never see it; they read the bounded store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from sentinel.db import Store
from sentinel.errors import LookAheadError


class BarFeed:
    def __init__(self, store: Store, symbols: Iterable[str], start: date, end: date):
        panel = store.view(None).get_price_panel(list(symbols), start_date=start, end_date=end)
        panel["day"] = panel["date"].dt.date
        self._by_day = {
            d: g.set_index("symbol")[["open", "close"]] for d, g in panel.groupby("day")
        }
        self._empty = pd.DataFrame(columns=["open", "close"], dtype="float64")
        self.current: date | None = None

    def advance(self, day: date) -> pd.DataFrame:
        """Move to ``day`` (never backwards) and return its bars (index symbol: open, close)."""
        if self.current is not None and day < self.current:
            raise ValueError(f"the feed only moves forward: {day} after {self.current}")
        self.current = day
        return self._by_day.get(day, self._empty)

    def bars(self, day: date) -> pd.DataFrame:
        """The bars of the current day; any other day is refused."""
        if self.current is None or day != self.current:
            raise LookAheadError("bar feed", None, self.current or day, day)
        return self._by_day.get(day, self._empty)
