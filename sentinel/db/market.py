"""What a simulation reads: securities and the universe, daily bars, benchmarks and sentiment.

Dated reads are bounded by the view's ``day`` and raise :class:`~sentinel.errors.LookAheadError`
past it. Hot paths (one symbol's bars, a panel of all symbols) run plain SQL on the driver's
cursor, or answer from the preloaded price cache; row-by-row ORM objects would miss the benches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session, select

from sentinel.db.bounded import Bounded
from sentinel.db.cache import Panel, PriceCache
from sentinel.db.tables import SecurityRow
from sentinel.errors import NotFoundError
from sentinel.timeutil import require_date, to_date

PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]
BENCH_COLUMNS = ["open", "high", "low", "close", "volume"]
#: Price rows turned into arrays at a time when the whole table is read (~40 MB of tuples).
PANEL_CHUNK = 100_000


def _frame(rows: Sequence[Sequence[Any]], columns: list[str], index: str | None) -> pd.DataFrame:
    """DataFrame from raw ``(date, [symbol,] floats...)`` rows, built column-wise with numpy.

    Dates arrive as ISO text (SQLite) or ``date`` objects (PostgreSQL); both convert in one
    vectorised call. NULL floats become NaN.
    """
    has_sym = len(columns) > 1 and columns[1] == "symbol"
    nlead = 2 if has_sym else 1
    grid = _object_grid(rows, len(columns))
    data: dict[str, Any] = {
        "date": pd.DatetimeIndex(grid[:, 0].astype("datetime64[D]").astype("datetime64[ns]"))
    }
    if has_sym:
        data["symbol"] = grid[:, 1]
    values = grid[:, nlead:].astype("float64")
    for j, col in enumerate(columns[nlead:]):
        data[col] = values[:, j]
    if index == "date":
        idx = data.pop("date")
        idx.name = "date"
        return pd.DataFrame(data, index=idx, columns=columns[1:])
    return pd.DataFrame(data, columns=columns)


def _object_grid(rows: Sequence[tuple[Any, ...]], width: int) -> np.ndarray:
    """Rows of tuples as a 2-D object array (pandas' C helper is ~10x a Python transpose)."""
    if not rows:
        return np.empty((0, width), dtype=object)
    try:
        # lazy: a private pandas helper, optional (the fallback below is correct, only slower)
        from pandas._libs.lib import to_object_array_tuples

        return to_object_array_tuples(list(rows))
    except ImportError:  # pragma: no cover - private helper moved
        return np.array(rows, dtype=object)


class MarketView(Bounded):
    """The market data of one database as of ``day`` (None: unbounded)."""

    def preload(self) -> PriceCache:
        """Load the whole price table into memory once per database; every view's reads are then
        served from it, behind the same as-of guard (adjusted point in time when the store holds
        corporate actions)."""
        cache = self.db.cache
        if cache is None:
            full = MarketView(self.db, None)
            cache = PriceCache.from_long(full._panel_sql(None, None, None, None), full.securities())
            cache.adjust(full._actions_sql(None))
            self.db.keep_cache(cache)
        return cache

    def _cache(self) -> PriceCache | None:
        """The price cache; preloaded on first use when the store holds corporate actions (the
        point-in-time adjustment is computed there, so raw SQL reads would be wrong)."""
        cache = self.db.cache
        if cache is None and self.db.rows("SELECT 1 FROM corporate_actions LIMIT 1"):
            cache = self.preload()
        return cache

    # -- corporate actions and dated memberships ----------------------------------------------
    def _actions_sql(self, end: date | None) -> list[tuple]:
        sql = "SELECT symbol, date, split, dividend FROM corporate_actions"
        params: dict[str, Any] = {}
        if end is not None:
            sql += " WHERE date <= :e"
            params["e"] = end
        rows = self.db.rows(sql + " ORDER BY symbol, date", **params)
        return [(r[0], to_date(r[1]), float(r[2]), float(r[3])) for r in rows]

    def corporate_actions(
        self, start: date | None = None, end: date | None = None
    ) -> list[tuple[str, date, float, float]]:
        """``(symbol, ex-date, split, dividend)`` of actions dated from ``start`` to ``end``."""
        e = self._bound("corporate_actions", None, end)
        b = require_date(start, "start") if start is not None else None
        return [a for a in self._actions_sql(e) if b is None or a[1] >= b]

    def listings(self) -> dict[str, list[tuple[date, date | None, float | None]]]:
        """Per symbol, its listing spans ``(from, to, cash_out)`` (not bounded: the runner knows a
        delisting on its day from it; universe reads filter by the day)."""
        out: dict[str, list[tuple[date, date | None, float | None]]] = {}
        rows = self.db.rows("SELECT symbol, listed_from, listed_to, cash_out FROM listings")
        for sym, a, b, cash in rows:
            out.setdefault(sym, []).append(
                (to_date(a), None if b is None else to_date(b), None if cash is None else cash)
            )
        return out

    def _spans(self, sql: str, d: date, **params: Any) -> tuple[set[str], set[str]]:
        """(symbols with a span begun by ``d``, symbols with a span containing ``d``) of a dated
        table; spans that begin later are not known yet and change nothing."""
        cache = self.db.cache
        key = f"{sql}|{sorted(params.items())}"
        if cache is None:
            all_rows = self.db.rows(sql, **params)
        elif (all_rows := cache.memo.get(key)) is None:
            all_rows = cache.memo[key] = list(self.db.rows(sql, **params))
        rows = [r for r in all_rows if to_date(r[1]) <= d]
        have = {r[0] for r in rows}
        on = {r[0] for r in rows if to_date(r[1]) <= d and (r[2] is None or d <= to_date(r[2]))}
        return have, on

    def listed(self, as_of: date | None = None) -> tuple[set[str], set[str]]:
        """(symbols with a listing begun by ``as_of``, those listed on ``as_of``)."""
        d = self._bound("listings", None, as_of) or datetime.now(UTC).date()
        return self._spans("SELECT symbol, listed_from, listed_to FROM listings", d)

    def index_members(self, name: str, as_of: date | None = None) -> list[str]:
        """Members of index ``name`` on ``as_of`` (from the imported membership spans)."""
        d = self._bound("index_membership", None, as_of) or datetime.now(UTC).date()
        sql = "SELECT symbol, valid_from, valid_to FROM index_membership WHERE index_name = :n"
        return sorted(self._spans(sql, d, n=name)[1])

    def index_names(self) -> list[str]:
        return [r[0] for r in self.db.rows("SELECT DISTINCT index_name FROM index_membership")]

    def sectors_as_of(self, as_of: date | None = None) -> dict[str, str | None]:
        """Each security's sector on ``as_of``: its sector history there, else the static one."""
        d = self._bound("sector_history", None, as_of) or datetime.now(UTC).date()
        out = {s.symbol: s.sector for s in self.securities()}
        rows = self.db.rows(
            "SELECT symbol, sector FROM sector_history WHERE valid_from <= :d "
            "AND (valid_to IS NULL OR valid_to >= :d)",
            d=d,
        )
        out.update({sym: sector for sym, sector in rows})
        return out

    def history_sectors(self) -> set[str]:
        """Sectors named in the sector history (empty: only the static sectors exist)."""
        return {r[0] for r in self.db.rows("SELECT DISTINCT sector FROM sector_history")}

    def stale_symbols(self, symbols: list[str], d: date, sessions: int) -> set[str]:
        """Symbols without a bar in the last ``sessions`` market sessions up to ``d``."""
        if not symbols:
            return set()
        cache = self.db.cache
        if cache is not None:
            hi = cache.end_row(d)
            if not cache.col:
                return set(symbols)
            j = cache.columns(symbols)
            recent = cache.bars_between(hi - sessions, hi, j) > 0  # j = -1 reads another column
            recent &= j >= 0  # and is masked here: a symbol with no bars at all is stale
            return {symbols[i] for i in np.flatnonzero(~recent).tolist()}
        cut = self._cutoff(d, sessions)
        if cut is None:
            return set()
        rows = self.db.rows(
            "SELECT DISTINCT symbol FROM prices WHERE date >= :b AND date <= :e", b=cut, e=d
        )
        return set(symbols) - {r[0] for r in rows}

    # -- securities and the universe -------------------------------------------------------
    def securities(self) -> list[SecurityRow]:
        """Every known security (regardless of the universe dates), by symbol."""
        cache = self.db.cache  # read with the bars, dropped with them when securities change
        if cache is not None:
            return list(cache.securities)
        with Session(self.db.engine) as s:
            return list(s.exec(select(SecurityRow).order_by(SecurityRow.symbol)).all())

    def get_security(self, symbol: str) -> SecurityRow:
        with Session(self.db.engine) as s:
            sec = s.get(SecurityRow, symbol)
        if sec is None:
            raise NotFoundError(f"unknown symbol {symbol!r}: import its prices first")
        return sec

    def universe(self, as_of: date | None = None, sector: str | None = None) -> list[SecurityRow]:
        """Securities investable on ``as_of`` (default: the simulation date, else today)."""
        d = self._bound("securities", None, as_of) or datetime.now(UTC).date()
        cache = self.db.cache
        if cache is not None:
            return [
                s for s in cache.securities
                if s.universe_from is not None and s.universe_from <= d
                and (s.universe_to is None or s.universe_to >= d)
                and (sector is None or s.sector == sector)
            ]  # fmt: skip
        with Session(self.db.engine) as s:
            # A security without a start date has no data yet: it is known, not investable.
            q = select(SecurityRow).where(
                SecurityRow.universe_from <= d,  # type: ignore[operator]
                (SecurityRow.universe_to.is_(None)) | (SecurityRow.universe_to >= d),  # type: ignore[union-attr]
            )
            if sector is not None:
                q = q.where(SecurityRow.sector == sector)
            return list(s.exec(q.order_by(SecurityRow.symbol)).all())

    def universe_symbols(
        self, as_of: date | None = None, sector: str | None = None, stale_after: int | None = None
    ) -> list[str]:
        """Symbols investable on ``as_of``: within their universe dates and listing spans, in
        ``sector`` as of that day, and (with ``stale_after``) with a bar in the last
        ``stale_after`` sessions; a symbol whose bars stopped leaves on its own."""
        d = self._bound("securities", None, as_of) or datetime.now(UTC).date()
        cache = self.db.cache
        if cache is not None:
            out = cache.universe_symbols(d, None)
        else:
            out = [s.symbol for s in self.universe(d, None)]
        have, listed = self.listed(d)
        if have:
            out = [s for s in out if s not in have or s in listed]
        if sector is not None:
            sectors = self.sectors_as_of(d)
            out = [s for s in out if sectors.get(s) == sector]
        if stale_after is not None:
            stale = self.stale_symbols(out, d, stale_after)
            if stale:
                out = [s for s in out if s not in stale]
        return out

    # -- prices ----------------------------------------------------------------------------
    def get_prices(
        self,
        symbol: str,
        days: int | None = None,
        end_date: date | None = None,
        start_date: date | None = None,
    ) -> pd.DataFrame:
        """Daily bars of ``symbol`` up to ``end_date``: the last ``days`` rows, or from a start.

        Returns a DataFrame indexed by ``date`` with columns open, high, low, close, adj_close,
        volume; empty when nothing matches.
        """
        end = self._bound("prices", symbol, end_date)
        cache = self._cache()
        if cache is not None:
            start = require_date(start_date, "start_date") if start_date is not None else None
            hit = cache.one(symbol, end, start, days)
            if hit is not None:
                return hit
        rows = self._dated_rows("prices", PRICE_COLUMNS, symbol, end, start_date, days)
        return _frame(rows, ["date", *PRICE_COLUMNS], "date")

    def _dated_rows(
        self,
        table: str,
        columns: list[str],
        symbol: str,
        end: date | None,
        start: date | None,
        days: int | None,
    ) -> list[tuple[Any, ...]]:
        """One symbol's rows of a dated table, oldest first: the last ``days`` or from ``start``."""
        sql = f"SELECT date, {', '.join(columns)} FROM {table} WHERE symbol = :s"
        params: dict[str, Any] = {"s": symbol}
        if end is not None:
            sql += " AND date <= :e"
            params["e"] = end
        if start is not None:
            sql += " AND date >= :b"
            params["b"] = require_date(start, "start")
        if days is not None:
            return self.db.rows(sql + " ORDER BY date DESC LIMIT :n", n=int(days), **params)[::-1]
        return self.db.rows(sql + " ORDER BY date", **params)

    def _cutoff(self, end: date | None, days: int) -> date | None:
        """The first of the last ``days`` trading dates up to ``end`` (the market calendar)."""
        sql = "SELECT DISTINCT date FROM prices"
        params: dict[str, Any] = {"n": days - 1}
        if end is not None:
            sql += " WHERE date <= :e"
            params["e"] = end
        rows = self.db.rows(sql + " ORDER BY date DESC LIMIT 1 OFFSET :n", **params)
        return to_date(rows[0][0]) if rows else None

    def get_price_panel(
        self,
        symbols: Iterable[str] | None = None,
        days: int | None = None,
        end_date: date | None = None,
        start_date: date | None = None,
    ) -> pd.DataFrame:
        """Bars of many symbols in long form (date, symbol, open, ..., volume) up to ``end_date``.

        ``days`` counts trading days of the whole market calendar (distinct dates in the store),
        so a symbol with gaps gets fewer rows rather than older ones.
        """
        end = self._bound("prices", None, end_date)
        start = require_date(start_date, "start_date") if start_date is not None else None
        cache = self._cache()
        if cache is not None:
            return cache.long(
                cache.rows(end, start, days), None if symbols is None else list(symbols)
            )
        return self._panel_sql(symbols, days, end, start)

    def _panel_sql(
        self,
        symbols: Iterable[str] | None,
        days: int | None,
        end: date | None,
        start: date | None,
    ) -> pd.DataFrame:
        """The price panel read from SQL: bars as stored (not adjusted)."""
        clauses, params = [], {}
        if end is not None:
            clauses.append("date <= :e")
            params["e"] = end
        if days is not None:
            cut = self._cutoff(end, days)
            if cut is not None and (start is None or cut > start):
                start = cut
        if start is not None:
            clauses.append("date >= :b")
            params["b"] = start
        # Naming the symbols lets the planner seek each symbol's (symbol, date) range instead of
        # walking the date index: ~2x faster for a whole-market panel on SQLite.
        if symbols is None:
            clauses.insert(0, "symbol IN (SELECT symbol FROM securities)")
        else:
            wanted = sorted(set(symbols))
            if not wanted:
                return _frame([], ["date", "symbol", *PRICE_COLUMNS], None)
            marks = [f":s{i}" for i in range(len(wanted))]
            clauses.insert(0, f"symbol IN ({', '.join(marks)})")
            params.update({f"s{i}": s for i, s in enumerate(wanted)})
        sql = f"SELECT date, symbol, {', '.join(PRICE_COLUMNS)} FROM prices"
        sql += " WHERE " + " AND ".join(clauses)
        columns, order = ["date", "symbol", *PRICE_COLUMNS], " ORDER BY symbol, date"
        if symbols is None and days is None and end is None and start is None:
            # the whole table (the preload): a chunk of tuples at a time, as the tuples of every
            # row at once were the peak of a 500-symbol run's main process (~250 MB of ~750)
            chunks = self.db.row_chunks(sql + order, PANEL_CHUNK)
            frames = [_frame(c, columns, None) for c in chunks] or [_frame([], columns, None)]
            return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return _frame(self.db.rows(sql + order, **params), columns, None)

    def get_close_panel(
        self,
        symbols: Iterable[str] | None = None,
        days: int | None = None,
        end_date: date | None = None,
        field: str = "close",
    ) -> pd.DataFrame:
        """Wide panel (date x symbol) of one price field, as of ``end_date``."""
        if self._cache() is not None:
            return self.get_close_block(symbols, days, end_date, field).frame()
        long = self.get_price_panel(symbols, days, end_date)
        return long.pivot(index="date", columns="symbol", values=field)

    def get_close_block(
        self,
        symbols: Iterable[str] | None = None,
        days: int | None = None,
        end_date: date | None = None,
        field: str = "close",
    ) -> Panel:
        """:meth:`get_close_panel` as a numpy :class:`~sentinel.db.cache.Panel` (the same values,
        dates and symbols, behind the same as-of bound), for reads in a simulation's hot loop."""
        cache = self._cache()
        if cache is not None:
            end = self._bound("prices", None, end_date)
            names = None if symbols is None else list(symbols)
            return cache.block(field, cache.rows(end, None, days), names)
        wide = self.get_close_panel(symbols, days, end_date, field)
        return Panel(wide.to_numpy(), wide.columns, wide.index, slice(None))

    def trading_days(self, start: date | None = None, end: date | None = None) -> list[date]:
        """The market calendar: distinct dates with any bar, within the as-of bound."""
        e = self._bound("prices", None, end)
        cache = self.db.cache
        if cache is not None:
            rows = cache.rows(e, require_date(start, "start") if start is not None else None, None)
            return cache.dates[rows].astype(object).tolist()  # datetime.date, in one call
        sql, params = "SELECT DISTINCT date FROM prices WHERE 1=1", {}
        if start is not None:
            sql += " AND date >= :b"
            params["b"] = require_date(start, "start")
        if e is not None:
            sql += " AND date <= :e"
            params["e"] = e
        return [to_date(r[0]) for r in self.db.rows(sql + " ORDER BY date", **params)]

    def price_span(self) -> tuple[date, date] | None:
        """First and last date with a bar (not bounded: used to plan runs, never for signals)."""
        row = self.db.rows("SELECT MIN(date), MAX(date) FROM prices")[0]
        return None if row[0] is None else (to_date(row[0]), to_date(row[1]))

    # -- benchmarks and sentiment -----------------------------------------------------------
    def benchmark_symbols(self) -> list[str]:
        return [
            r[0] for r in self.db.rows("SELECT DISTINCT symbol FROM benchmark_prices ORDER BY 1")
        ]

    def market_symbol(self, preferred: str | None = None) -> str | None:
        """The benchmark used as "the market": ``preferred`` if stored, else SPY, ^GSPC, MARKET."""
        have = self.benchmark_symbols()
        for cand in (preferred, "SPY", "^GSPC", "MARKET"):
            if cand and cand in have:
                return cand
        return have[0] if have else None

    def get_benchmark(
        self,
        symbol: str | None = None,
        days: int | None = None,
        end_date: date | None = None,
        start_date: date | None = None,
    ) -> pd.DataFrame:
        """Bars of a benchmark series (default: :meth:`market_symbol`) up to ``end_date``."""
        symbol = symbol or self.market_symbol()
        end = self._bound("benchmark_prices", symbol, end_date)
        if symbol is None:
            return _frame([], ["date", *BENCH_COLUMNS], "date")
        rows = self._dated_rows("benchmark_prices", BENCH_COLUMNS, symbol, end, start_date, days)
        return _frame(rows, ["date", *BENCH_COLUMNS], "date")

    def get_sentiment(
        self, symbol: str, end_date: date | None = None, days: int | None = None
    ) -> pd.Series:
        """Daily sentiment scores of ``symbol`` known by ``end_date`` (empty when none)."""
        end = self._bound("sentiment", symbol, end_date)
        rows = self._dated_rows("sentiment", ["score"], symbol, end, None, days)
        return _frame(rows, ["date", "score"], "date")["score"]
