"""An in-memory copy of the bars a run needs, served behind the store's as-of guard.

A backtest reads the same bars hundreds of times (every rebalance wants the trailing year); one
query per simulated day cannot be fast. :meth:`Database.preload` loads the price table once into
wide arrays (date x symbol per field), and the market view's reads answer from them after the
same ``_bound`` check as the SQL path, so the simulation view still raises on any read past its
date. Any write to the price table through the database drops the cache.

``values`` hold the bars as traded (the broker's tape). When the store holds corporate actions,
reads are served from ``adjusted`` instead: each row divided by its own cumulative factor, then
scaled by the factor of the last row read, so a read up to T is adjusted with actions up to T only
(:mod:`sentinel.data.actions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from sentinel.db.adjust import adjustment_factors

FIELDS = ("open", "high", "low", "close", "adj_close", "volume")


class Panel:
    """A date x symbol block of one price field as numpy, for a decision that needs no pandas
    object (building a DataFrame per rebalance costs more than a simple strategy's whole
    decision). :meth:`frame` is the DataFrame :meth:`PriceCache.wide` returns for it.

    ``values[t, j]``: row t of :attr:`dates` (oldest first), column j of :attr:`symbols` (an
    object index named symbol; shared between reads, so not to be modified).
    """

    __slots__ = ("values", "symbols", "_index", "_rows", "_kept", "_shared")

    def __init__(self, values: np.ndarray, symbols: pd.Index, index: pd.DatetimeIndex,
                 rows: slice, kept: np.ndarray | None = None, *, shared: bool = False):  # fmt: skip
        self.values = values
        self.symbols = symbols
        self._index, self._rows, self._kept = index, rows, kept
        self._shared = shared  # the labels are the cache's memoised ones

    def __len__(self) -> int:
        return len(self.values)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The rows' dates (built on demand: slicing a DatetimeIndex is not free)."""
        index = self._index[self._rows]
        return index if self._kept is None else index[self._kept]

    def frame(self) -> pd.DataFrame:
        """The block as a DataFrame (on the same array; its own column index object)."""
        labels = self.symbols.view() if self._shared else self.symbols
        return pd.DataFrame(self.values, index=self.dates, columns=labels, copy=False)


def column_indices(col: Mapping[str, int], names: Sequence[str]) -> np.ndarray:
    """Each name's column in ``col`` (-1: none), read-only: callers memoise and share it."""
    j = np.fromiter((col.get(s, -1) for s in names), np.int64, len(names))
    j.flags.writeable = False
    return j


@dataclass
class PriceCache:
    """Wide arrays of the price table: ``values[field][t, j]`` for date t and symbol j."""

    dates: np.ndarray  # datetime64[D], sorted, the market calendar of the loaded rows
    index: pd.DatetimeIndex
    symbols: list[str]
    col: dict[str, int]
    values: dict[str, np.ndarray]
    securities: list  # SecurityRow rows (universe reads)
    #: Per field, the bars divided by their cumulative factor (None: no corporate actions).
    adjusted: dict[str, np.ndarray] | None = None
    #: Per field, the cumulative factor a read up to row t multiplies by (row t's own).
    scale: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        far = date.max.toordinal()
        self._sec_names = np.array([s.symbol for s in self.securities], dtype=object)
        self._sec_from = np.array(
            [s.universe_from.toordinal() if s.universe_from else far for s in self.securities]
        )
        self._sec_to = np.array(
            [s.universe_to.toordinal() if s.universe_to else far for s in self.securities]
        )
        self._sec_sector = np.array([s.sector for s in self.securities], dtype=object)
        self._universe_memo: dict[tuple[date, str | None], list[str]] = {}
        self._bar_counts: np.ndarray | None = None
        self._end_rows: dict[date, int] | None = None  # a loaded date -> its end_row
        self._col_memo: dict[tuple[str, ...], tuple[np.ndarray, pd.Index]] = {}
        #: Rows of small dated tables (listings, ...) read once per cache: the cache is dropped
        #: whenever those tables change (see Database), so the memo cannot go stale.
        self.memo: dict[str, list] = {}

    def _names(self, names: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
        """Each name's column (-1: no bars, read-only) and the names as column labels; memoised,
        since a run asks for the same universe on every rebalance (hashing a tuple is far
        cheaper than a look-up per name, and pandas' Index construction dearer still)."""
        key = tuple(names)
        hit = self._col_memo.get(key)
        if hit is None:
            if len(self._col_memo) >= 64:
                self._col_memo.clear()
            cols = column_indices(self.col, key)
            labels = pd.Index(np.array(key, dtype=object), dtype=object, copy=False, name="symbol")
            hit = self._col_memo[key] = (cols, labels)
        return hit

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """Each name's column (-1: no bars), read-only."""
        return self._names(names)[0]

    def bars_between(self, lo: int, hi: int, cols: list[int] | np.ndarray) -> np.ndarray:
        """Number of bars of each column in rows ``[lo, hi)`` (O(1) per symbol: prefix counts)."""
        if self._bar_counts is None:
            have = ~np.isnan(self.values["close"])
            counts = np.zeros((have.shape[0] + 1, have.shape[1]), dtype=np.int32)
            np.cumsum(have, axis=0, out=counts[1:])
            self._bar_counts = counts
        return self._bar_counts[hi, cols] - self._bar_counts[max(0, lo), cols]

    def universe_symbols(self, d: date, sector: str | None) -> list[str]:
        """Symbols in the universe on ``d`` (memoised: a run asks for each day many times)."""
        key = (d, sector)
        hit = self._universe_memo.get(key)
        if hit is None:
            o = d.toordinal()
            mask = (self._sec_from <= o) & (o <= self._sec_to)
            if sector is not None:
                mask &= self._sec_sector == sector
            hit = sorted(self._sec_names[mask].tolist())
            self._universe_memo[key] = hit
        return list(hit)

    def adjust(self, actions: list[tuple]) -> None:
        """Serve reads adjusted point in time with ``(symbol, date, split, dividend)`` actions."""
        if not actions:
            self.adjusted = self.scale = None
            return
        g, splits = adjustment_factors(self.dates, self.col, self.values["close"], actions)
        # adj_close is served as imported: the file's own column, not recomputed here
        self.scale = {f: g for f in ("open", "high", "low", "close")} | {"volume": splits}
        self.adjusted = {f: self.values[f] / g for f in ("open", "high", "low", "close")}
        self.adjusted["volume"] = self.values["volume"] / splits

    def _block(self, field: str, rows: slice, cols) -> np.ndarray:
        """One field's rows x cols, adjusted as of the last row when actions are loaded."""
        if self.adjusted is None or self.scale is None or field not in self.adjusted:
            return self.values[field][rows][:, cols]
        block = self.adjusted[field][rows][:, cols]
        lo, hi = rows.start or 0, len(self.dates) if rows.stop is None else rows.stop
        if hi <= lo:
            return block
        return block * self.scale[field][hi - 1, cols]  # the factor known on the last row read

    @classmethod
    def from_long(cls, long: pd.DataFrame, securities: list) -> PriceCache:
        dates = np.unique(long["date"].to_numpy().astype("datetime64[D]"))
        symbols = sorted(long["symbol"].unique())
        col = {s: j for j, s in enumerate(symbols)}
        ti = np.searchsorted(dates, long["date"].to_numpy().astype("datetime64[D]"))
        sj = np.array([col[s] for s in long["symbol"].to_numpy()], dtype=np.int64)
        values = {}
        for f in FIELDS:
            arr = np.full((len(dates), len(symbols)), np.nan)
            arr[ti, sj] = long[f].to_numpy(dtype="float64")
            values[f] = arr
        index = pd.DatetimeIndex(dates.astype("datetime64[ns]"), name="date")
        return cls(dates, index, symbols, col, values, securities)

    def end_row(self, end: date | None) -> int:
        """Rows ``[:end_row]`` are on or before ``end``."""
        if end is None:
            return len(self.dates)
        if self._end_rows is None:  # a run asks for its days many times: one dict look-up each
            self._end_rows = {d: i + 1 for i, d in enumerate(self.dates.astype(object).tolist())}
        row = self._end_rows.get(end)
        if row is None:
            row = int(np.searchsorted(self.dates, np.datetime64(end, "D"), side="right"))
        return row

    def start_row(self, start: date | None) -> int:
        if start is None:
            return 0
        return int(np.searchsorted(self.dates, np.datetime64(start, "D"), side="left"))

    def rows(self, end: date | None, start: date | None, days: int | None) -> slice:
        hi = self.end_row(end)
        lo = self.start_row(start)
        if days is not None:
            lo = max(lo, hi - int(days))
        return slice(lo, max(lo, hi))

    def wide(self, field: str, rows: slice, symbols: list[str] | None) -> pd.DataFrame:
        """date x symbol panel of one field; dates where none of the symbols has a bar dropped."""
        return self.block(field, rows, symbols).frame()

    def block(self, field: str, rows: slice, symbols: list[str] | None) -> Panel:
        """:meth:`wide` as numpy: the same values, dates and symbols, no pandas object built."""
        names = self.symbols if symbols is None else list(symbols)
        cols, labels = self._names(names)
        if (cols < 0).any():  # symbols the store has no bars for
            names = [s for s in names if s in self.col]
            cols, labels = self._names(names)
        close = self.values["close"][rows][:, cols]
        # a fresh array either way (fancy index): a frame built on it need not copy it
        raw = field == "close" and self.adjusted is None
        block = close if raw else self._block(field, rows, cols)
        lo, hi, _ = rows.indices(len(self.dates))
        if hi > lo and len(cols) and (self.bars_between(lo, hi, cols) == hi - lo).all():
            # every symbol has every bar (prefix counts: no scan of the block for gaps)
            return Panel(block, labels, self.index, rows, None, shared=True)
        present = ~np.isnan(close)
        keep, has = present.any(axis=1), present.any(axis=0)
        kept = None
        if not keep.all():
            block, kept = block[keep], keep
        if has.all():
            return Panel(block, labels, self.index, rows, kept, shared=True)
        block = block[:, has]
        labels = pd.Index(np.array(names, dtype=object)[has], dtype=object, name="symbol")
        return Panel(block, labels, self.index, rows, kept)

    def one(
        self, symbol: str, end: date | None, start: date | None, days: int | None
    ) -> pd.DataFrame | None:
        """One symbol's own bars up to ``end`` (the last ``days`` of them, or from ``start``)."""
        j = self.col.get(symbol)
        if j is None:
            return None
        lo, hi = self.start_row(start), self.end_row(end)
        idx = np.flatnonzero(~np.isnan(self.values["close"][lo:hi, j])) + lo
        if days is not None:
            idx = idx[-int(days) :] if days > 0 else idx[:0]
        data = {f: self._block(f, slice(lo, hi), [j])[idx - lo, 0] for f in FIELDS}
        return pd.DataFrame(data, index=self.index[idx])

    def long(self, rows: slice, symbols: list[str] | None) -> pd.DataFrame:
        """Long form (date, symbol, fields...) ordered by symbol then date, like the SQL path."""
        names = (
            self.symbols if symbols is None else sorted(s for s in set(symbols) if s in self.col)
        )
        cols = np.array([self.col[s] for s in names], dtype=np.int64)
        close = self.values["close"][rows][:, cols]
        t_idx, s_idx = np.nonzero(~np.isnan(close).T)  # symbol-major order
        out = {
            "date": self.index[rows][s_idx],
            "symbol": np.array(names, dtype=object)[t_idx],
        }
        for f in FIELDS:
            out[f] = self._block(f, rows, cols).T[t_idx, s_idx]
        return pd.DataFrame(out)
