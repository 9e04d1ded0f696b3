"""The one storage gateway: every read is bounded by an as-of date, and nothing else writes SQL.

A :class:`Store` is a view of the database. ``store.view(day)`` makes an immutable *simulation
view* bound to ``day``: reads default to that day and a read that asks for anything later raises
:class:`~sentinel.errors.LookAheadError` naming the table, the symbol, the bound and the date asked
for. Look-ahead is then an error, not a habit to avoid. Only the runner makes views for simulated
days (one per tick); nothing changes the day of an existing view.

Hot paths (one symbol's bars, a panel of all symbols) use plain SQL through the engine's
connection and build DataFrames with vectorised date parsing; row-by-row ORM objects would not meet
the bench targets (see ``bench/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session, select

from sentinel.db.cache import PriceCache
from sentinel.db.engine import make_engine
from sentinel.db.tables import (
    BacktestRun,
    LiveAccount,
    LiveOrder,
    LiveRecommendation,
    MLPrediction,
    ModelRecord,
    RegimeState,
    Security,
    SettingRow,
)
from sentinel.errors import LookAheadError, NotFoundError
from sentinel.timeutil import DateLike, as_of_ts, end_of_day_ts, to_date

PRICE_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume"]
BENCH_COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A stored wavelet score and when it was calculated (Unix seconds, end of its day)."""

    symbol: str
    as_of: date
    calculated_at: float
    score: float
    components: dict[str, Any]


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
        from pandas._libs.lib import to_object_array_tuples

        return to_object_array_tuples(list(rows))
    except ImportError:  # pragma: no cover - private helper moved
        return np.array(rows, dtype=object)


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``:name`` parameters to the ``%(name)s`` style of psycopg and most other drivers."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


def _json(value: Any) -> Any:
    """Stored JSON columns may come back as text on some drivers."""
    return json.loads(value) if isinstance(value, str) else value


class Store:
    """A bounded view of the sentinel database.

    Parameters
    ----------
    url:
        SQLAlchemy URL; defaults to the ``SENTINEL_DATABASE_URL`` setting.
    engine:
        An existing engine to share (views of the same database share one engine).
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        if engine is None:
            if url is None:
                from sentinel.settings import get_settings

                url = get_settings().database_url
            engine = make_engine(url)
        self.engine = engine
        self._day: date | None = None
        self._shared: dict[str, Any] = {}  # the price cache, shared with views

    # -- the simulation view -------------------------------------------------------------
    @property
    def day(self) -> date | None:
        """The day every read is bounded by ("now" of a simulation view), or None when unbounded."""
        return self._day

    def view(self, day: date | None) -> Store:
        """A new view sharing this engine and price cache, bounded at ``day`` (None: unbounded).

        Views are cheap (no connection is opened) and immutable: "now" moves by making a new view.
        """
        if day is not None and not isinstance(day, date):
            raise TypeError(f"view(day): a datetime.date, not {type(day).__name__}")
        other = Store(engine=self.engine)
        other._shared = self._shared
        other._day = day.date() if isinstance(day, datetime) else day
        return other

    # -- the in-memory price cache -----------------------------------------------------------
    def preload(self) -> PriceCache:
        """Load the whole price table into memory; reads are then served from it (same guard)."""
        cache = self._shared.get("prices")
        if cache is None:
            self._shared.pop("prices", None)
            long = self.view(None).get_price_panel()
            cache = PriceCache.from_long(long, self.securities())
            self._shared["prices"] = cache
        return cache

    @property
    def _cache(self) -> PriceCache | None:
        return self._shared.get("prices")

    def drop_cache(self) -> None:
        self._shared.pop("prices", None)

    def _bound(self, table: str, symbol: str | None, requested: DateLike | None) -> date | None:
        """The effective end date of a read, raising on a read past the simulation date."""
        if requested is None:
            return self._day
        d = to_date(requested)
        if self._day is not None and d > self._day:
            raise LookAheadError(table, symbol, self._day, d)
        return d

    def _bound_ts(self, table: str, symbol: str | None, requested: DateLike | None) -> float | None:
        """As :meth:`_bound` for timestamp-keyed tables (Unix seconds, end of day for dates)."""
        limit = None if self._day is None else end_of_day_ts(self._day)
        if requested is None:
            return limit
        ts = as_of_ts(requested)
        if limit is not None and ts > limit:
            raise LookAheadError(table, symbol, self._day, requested)  # type: ignore[arg-type]
        return ts

    # -- plumbing --------------------------------------------------------------------------
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run a read on the driver's own cursor: plain tuples, no per-row result processing.

        ``sql`` uses ``:name`` parameters (sqlite3's own style); other drivers get ``%(name)s``.
        """
        if self.dialect == "sqlite":  # SQLite stores dates as ISO text; compare as text
            params = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
        else:
            sql = _pyformat(sql)
        with self.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, params)
                return cur.fetchall()
            finally:
                cur.close()

    # -- securities and the universe -------------------------------------------------------
    def securities(self) -> list[Security]:
        """Every known security (regardless of the universe dates)."""
        with Session(self.engine) as s:
            return list(s.exec(select(Security).order_by(Security.symbol)).all())

    def get_security(self, symbol: str) -> Security:
        with Session(self.engine) as s:
            sec = s.get(Security, symbol)
        if sec is None:
            raise NotFoundError(f"unknown symbol {symbol!r}: import its prices first")
        return sec

    def universe(self, as_of: DateLike | None = None, sector: str | None = None) -> list[Security]:
        """Securities investable on ``as_of`` (default: the simulation date, else today)."""
        d = self._bound("securities", None, as_of) or datetime.now(UTC).date()
        cache = self._cache
        if cache is not None:
            return [
                s for s in cache.securities
                if s.universe_from is not None and s.universe_from <= d
                and (s.universe_to is None or s.universe_to >= d)
                and (sector is None or s.sector == sector)
            ]  # fmt: skip
        with Session(self.engine) as s:
            # A security without a start date has no data yet: it is known, not investable.
            q = select(Security).where(
                Security.universe_from <= d,  # type: ignore[operator]
                (Security.universe_to.is_(None)) | (Security.universe_to >= d),  # type: ignore[union-attr]
            )
            if sector is not None:
                q = q.where(Security.sector == sector)
            return list(s.exec(q.order_by(Security.symbol)).all())

    def universe_symbols(
        self, as_of: DateLike | None = None, sector: str | None = None
    ) -> list[str]:
        cache = self._cache
        if cache is not None:
            d = self._bound("securities", None, as_of) or datetime.now(UTC).date()
            return cache.universe_symbols(d, sector)
        return [s.symbol for s in self.universe(as_of, sector)]

    # -- prices ----------------------------------------------------------------------------
    def get_prices(
        self,
        symbol: str,
        days: int | None = None,
        end_date: DateLike | None = None,
        start_date: DateLike | None = None,
    ) -> pd.DataFrame:
        """Daily bars of ``symbol`` up to ``end_date``: the last ``days`` rows, or from a start.

        Returns a DataFrame indexed by ``date`` with columns open, high, low, close, adj_close,
        volume; empty when nothing matches.
        """
        end = self._bound("prices", symbol, end_date)
        cache = self._cache
        if cache is not None:
            start = to_date(start_date) if start_date is not None else None
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
        start: DateLike | None,
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
            params["b"] = to_date(start)
        if days is not None:
            return self._rows(sql + " ORDER BY date DESC LIMIT :n", n=int(days), **params)[::-1]
        return self._rows(sql + " ORDER BY date", **params)

    def _cutoff(self, end: date | None, days: int) -> date | None:
        """The first of the last ``days`` trading dates up to ``end`` (the market calendar)."""
        sql = "SELECT DISTINCT date FROM prices"
        params: dict[str, Any] = {"n": days - 1}
        if end is not None:
            sql += " WHERE date <= :e"
            params["e"] = end
        rows = self._rows(sql + " ORDER BY date DESC LIMIT 1 OFFSET :n", **params)
        return to_date(rows[0][0]) if rows else None

    def get_price_panel(
        self,
        symbols: Iterable[str] | None = None,
        days: int | None = None,
        end_date: DateLike | None = None,
        start_date: DateLike | None = None,
    ) -> pd.DataFrame:
        """Bars of many symbols in long form (date, symbol, open, ..., volume) up to ``end_date``.

        ``days`` counts trading days of the whole market calendar (distinct dates in the store),
        so a symbol with gaps gets fewer rows rather than older ones.
        """
        end = self._bound("prices", None, end_date)
        clauses, params = [], {}
        if end is not None:
            clauses.append("date <= :e")
            params["e"] = end
        start = to_date(start_date) if start_date is not None else None
        cache = self._cache
        if cache is not None:
            return cache.long(
                cache.rows(end, start, days), None if symbols is None else list(symbols)
            )
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
        rows = self._rows(sql + " ORDER BY symbol, date", **params)
        return _frame(rows, ["date", "symbol", *PRICE_COLUMNS], None)

    def get_close_panel(
        self,
        symbols: Iterable[str] | None = None,
        days: int | None = None,
        end_date: DateLike | None = None,
        field: str = "close",
    ) -> pd.DataFrame:
        """Wide panel (date x symbol) of one price field, as of ``end_date``."""
        cache = self._cache
        if cache is not None:
            end = self._bound("prices", None, end_date)
            names = None if symbols is None else list(symbols)
            return cache.wide(field, cache.rows(end, None, days), names)
        long = self.get_price_panel(symbols, days, end_date)
        return long.pivot(index="date", columns="symbol", values=field)

    def trading_days(
        self, start: DateLike | None = None, end: DateLike | None = None
    ) -> list[date]:
        """The market calendar: distinct dates with any bar, within the as-of bound."""
        e = self._bound("prices", None, end)
        cache = self._cache
        if cache is not None:
            rows = cache.rows(e, to_date(start) if start is not None else None, None)
            return [d.astype(object) for d in cache.dates[rows]]
        sql, params = "SELECT DISTINCT date FROM prices WHERE 1=1", {}
        if start is not None:
            sql += " AND date >= :b"
            params["b"] = to_date(start)
        if e is not None:
            sql += " AND date <= :e"
            params["e"] = e
        return [to_date(r[0]) for r in self._rows(sql + " ORDER BY date", **params)]

    def price_span(self) -> tuple[date, date] | None:
        """First and last date with a bar (not bounded: used to plan runs, never for signals)."""
        row = self._rows("SELECT MIN(date), MAX(date) FROM prices")[0]
        return None if row[0] is None else (to_date(row[0]), to_date(row[1]))

    # -- benchmarks and sentiment -----------------------------------------------------------
    def benchmark_symbols(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT DISTINCT symbol FROM benchmark_prices ORDER BY 1")]

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
        end_date: DateLike | None = None,
        start_date: DateLike | None = None,
    ) -> pd.DataFrame:
        """Bars of a benchmark series (default: :meth:`market_symbol`) up to ``end_date``."""
        symbol = symbol or self.market_symbol()
        end = self._bound("benchmark_prices", symbol, end_date)
        if symbol is None:
            return _frame([], ["date", *BENCH_COLUMNS], "date")
        rows = self._dated_rows("benchmark_prices", BENCH_COLUMNS, symbol, end, start_date, days)
        return _frame(rows, ["date", *BENCH_COLUMNS], "date")

    def get_sentiment(
        self, symbol: str, end_date: DateLike | None = None, days: int | None = None
    ) -> pd.Series:
        """Daily sentiment scores of ``symbol`` known by ``end_date`` (empty when none)."""
        end = self._bound("sentiment", symbol, end_date)
        rows = self._dated_rows("sentiment", ["score"], symbol, end, None, days)
        return _frame(rows, ["date", "score"], "date")["score"]

    # -- wavelet scores ---------------------------------------------------------------------
    def save_scores(self, records: Iterable[ScoreRecord]) -> int:
        """Upsert scores keyed by (symbol, as_of); returns how many were written."""
        rows = [
            {
                "symbol": r.symbol,
                "as_of": r.as_of,
                "calculated_at": float(r.calculated_at),
                "score": float(r.score),
                "components": json.dumps(r.components),
            }
            for r in records
        ]
        return self._upsert("wavelet_scores", ["symbol", "as_of"], rows)

    def get_score(self, symbol: str, as_of_date: DateLike | None = None) -> ScoreRecord | None:
        """The latest score with ``calculated_at <= as_of_date`` (Unix s or a date's end)."""
        return self.get_scores([symbol], as_of_date).get(symbol)

    def get_scores(
        self, symbols: Iterable[str], as_of_date: DateLike | None = None
    ) -> dict[str, ScoreRecord]:
        """Per symbol, the latest score calculated by ``as_of_date`` (none: symbol left out)."""
        symbols = list(symbols)
        ts = self._bound_ts("wavelet_scores", symbols[0] if len(symbols) == 1 else None, as_of_date)
        if not symbols:
            return {}
        sql = (
            "SELECT w.symbol, w.as_of, w.calculated_at, w.score, w.components FROM wavelet_scores w"
            " JOIN (SELECT symbol, MAX(calculated_at) AS m FROM wavelet_scores WHERE 1=1"
            + (" AND calculated_at <= :t" if ts is not None else "")
            + " GROUP BY symbol) x ON w.symbol = x.symbol AND w.calculated_at = x.m"
        )
        params = {"t": ts} if ts is not None else {}
        wanted = set(symbols)
        out: dict[str, ScoreRecord] = {}
        for sym, asof, calc, score, comp in self._rows(sql, **params):
            if sym in wanted:
                out[sym] = ScoreRecord(sym, to_date(asof), float(calc), float(score), _json(comp))
        return out

    # -- ML predictions ---------------------------------------------------------------------
    def upsert_ml_predictions(self, rows: Iterable[dict[str, Any]]) -> int:
        """Write predictions keyed by (symbol, date); ``predicted_at`` defaults to the day's end."""
        prepared = []
        for r in rows:
            r = dict(r)
            r["date"] = to_date(r["date"])
            r.setdefault("predicted_at", end_of_day_ts(r["date"]))
            prepared.append(r)
        return self._upsert("ml_predictions", ["symbol", "date"], prepared)

    def get_ml_prediction_as_of(self, symbol: str, as_of_ts: DateLike) -> MLPrediction | None:
        """The most recent prediction for ``symbol`` with ``predicted_at <= as_of_ts``."""
        ts = self._bound_ts("ml_predictions", symbol, as_of_ts)
        with Session(self.engine) as s:
            q = select(MLPrediction).where(MLPrediction.symbol == symbol)
            if ts is not None:
                q = q.where(MLPrediction.predicted_at <= ts)
            return s.exec(q.order_by(MLPrediction.predicted_at.desc()).limit(1)).first()  # type: ignore[attr-defined]

    def get_ml_predictions(
        self,
        symbol: str | None = None,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> pd.DataFrame:
        """Stored predictions (for drift and reports) up to ``end``, as a DataFrame."""
        e = self._bound("ml_predictions", symbol, end)
        with Session(self.engine) as s:
            q = select(MLPrediction)
            if symbol is not None:
                q = q.where(MLPrediction.symbol == symbol)
            if start is not None:
                q = q.where(MLPrediction.date >= to_date(start))
            if e is not None:
                q = q.where(MLPrediction.date <= e)
            rows = [r.model_dump() for r in s.exec(q.order_by(MLPrediction.date))]
        return pd.DataFrame(rows, columns=list(MLPrediction.model_fields))

    def existing_prediction_keys(self, symbol: str) -> set[date]:
        return {
            to_date(r[0])
            for r in self._rows("SELECT date FROM ml_predictions WHERE symbol = :s", s=symbol)
        }

    # -- regime states ----------------------------------------------------------------------
    def upsert_regime_state(
        self, symbol: str, d: DateLike, regime: int, regime_name: str, confidence: float
    ) -> None:
        """Write one HMM regime row; writing the same (symbol, date) again replaces it."""
        self.upsert_regime_states(
            [
                {
                    "symbol": symbol,
                    "date": to_date(d),
                    "regime": int(regime),
                    "regime_name": regime_name,
                    "confidence": float(confidence),
                }
            ]
        )

    def upsert_regime_states(self, rows: Iterable[dict[str, Any]]) -> int:
        return self._upsert("regime_states", ["symbol", "date"], list(rows))

    def get_regime_state(self, symbol: str, as_of: DateLike | None = None) -> RegimeState | None:
        """The latest stored regime of ``symbol`` on or before ``as_of``."""
        e = self._bound("regime_states", symbol, as_of)
        with Session(self.engine) as s:
            q = select(RegimeState).where(RegimeState.symbol == symbol)
            if e is not None:
                q = q.where(RegimeState.date <= e)
            return s.exec(q.order_by(RegimeState.date.desc()).limit(1)).first()  # type: ignore[attr-defined]

    def existing_regime_dates(self, symbol: str) -> set[date]:
        return {
            to_date(r[0])
            for r in self._rows("SELECT date FROM regime_states WHERE symbol = :s", s=symbol)
        }

    def count(self, table: str) -> int:
        """Row count of a sentinel table (name checked against the schema)."""
        from sqlmodel import SQLModel

        if table not in SQLModel.metadata.tables:
            raise NotFoundError(f"no table {table!r}")
        return int(self._rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    # -- training samples -------------------------------------------------------------------
    def upsert_training_samples(self, rows: Iterable[dict[str, Any]]) -> int:
        prepared = []
        for r in rows:
            r = dict(r)
            r["features"] = json.dumps([float(x) for x in r["features"]])
            prepared.append(r)
        return self._upsert("training_samples", ["symbol", "date", "horizon_days"], prepared)

    def get_training_samples(
        self,
        symbol: str | None = None,
        known_by: DateLike | None = None,
        horizon_days: int | None = None,
    ) -> pd.DataFrame:
        """Samples whose label was known by ``known_by`` (default: the simulation date).

        Columns: symbol, date, horizon_days, label, label_known_at, features (list of floats).
        """
        k = self._bound("training_samples", symbol, known_by)
        sql = (
            "SELECT symbol, date, horizon_days, label, label_known_at, features"
            " FROM training_samples WHERE 1=1"
        )
        params: dict[str, Any] = {}
        if symbol is not None:
            sql += " AND symbol = :s"
            params["s"] = symbol
        if k is not None:
            sql += " AND label_known_at <= :k"
            params["k"] = k
        if horizon_days is not None:
            sql += " AND horizon_days = :h"
            params["h"] = int(horizon_days)
        rows = self._rows(sql + " ORDER BY symbol, date", **params)
        df = pd.DataFrame.from_records(
            rows, columns=["symbol", "date", "horizon_days", "label", "label_known_at", "features"]
        )
        df["date"] = pd.to_datetime(df["date"].astype(str))
        df["label_known_at"] = pd.to_datetime(df["label_known_at"].astype(str))
        df["features"] = df["features"].map(_json)
        return df

    # -- model records ----------------------------------------------------------------------
    def upsert_model_record(self, record: ModelRecord) -> None:
        with Session(self.engine) as s:
            s.merge(record)
            s.commit()

    def get_model_records(self) -> list[ModelRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(ModelRecord).order_by(ModelRecord.symbol)).all())

    def get_model_record(self, symbol: str) -> ModelRecord | None:
        with Session(self.engine) as s:
            return s.get(ModelRecord, symbol)

    # -- settings ---------------------------------------------------------------------------
    def get_stored_settings(self) -> dict[str, Any]:
        """The settings changed through the API: key -> value."""
        with Session(self.engine) as s:
            return {r.key: _json(r.value)["value"] for r in s.exec(select(SettingRow))}

    def set_settings(self, values: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        with Session(self.engine) as s:
            for k, v in values.items():
                s.merge(SettingRow(key=k, value={"value": v}, updated_at=now))
            s.commit()

    # -- backtest runs ----------------------------------------------------------------------
    def save_backtest_run(self, run: BacktestRun) -> int:
        with Session(self.engine) as s:
            s.add(run)
            s.commit()
            s.refresh(run)
            assert run.id is not None
            return run.id

    def list_backtest_runs(self, sweep_id: str | None = None) -> list[BacktestRun]:
        with Session(self.engine) as s:
            q = select(BacktestRun)
            if sweep_id is not None:
                q = q.where(BacktestRun.sweep_id == sweep_id)
            return list(s.exec(q.order_by(BacktestRun.id)).all())  # type: ignore[arg-type]

    def get_backtest_run(self, run_id: int) -> BacktestRun:
        with Session(self.engine) as s:
            run = s.get(BacktestRun, run_id)
        if run is None:
            raise NotFoundError(f"no backtest run with id {run_id}")
        return run

    # -- live accounts, orders and recommendations ------------------------------------------
    def get_live_account(self, account: str) -> LiveAccount | None:
        with Session(self.engine) as s:
            return s.get(LiveAccount, account)

    def send_live_order(self, order: LiveOrder) -> bool:
        """Record an order as sent, once: a second send of the same id is a no-op (False)."""
        row = order.model_dump()
        with self.engine.begin() as conn:
            before = conn.execute(
                text("SELECT 1 FROM live_orders WHERE order_id = :i"), {"i": order.order_id}
            ).first()
            if before is not None:
                return False
            self._upsert("live_orders", ["order_id"], [row], conn=conn)
        return True

    def live_orders(self, account: str, status: str | None = None) -> list[LiveOrder]:
        with Session(self.engine) as s:
            q = select(LiveOrder).where(LiveOrder.account == account)
            if status is not None:
                q = q.where(LiveOrder.status == status)
            return list(s.exec(q.order_by(LiveOrder.decided_on, LiveOrder.symbol)).all())

    def commit_live_day(
        self,
        account: LiveAccount,
        fills: list[dict[str, Any]],
        cancelled: list[tuple[str, str]],
        recommendations: list[dict[str, Any]],
    ) -> None:
        """A processed live day, atomically: fills, cancellations, the book, recommendations."""
        with Session(self.engine) as s:
            for f in fills:
                o = s.get(LiveOrder, f["order_id"])
                if o is not None:
                    o.status, o.fill_day, o.fill_price = "filled", f["day"], f["price"]
                    o.commission, o.slippage = f["commission"], f["slippage"]
                    o.quantity = f["quantity"]
                    s.add(o)
            for order_id, why in cancelled:
                o = s.get(LiveOrder, order_id)
                if o is not None:
                    o.status, o.note = "cancelled", why
                    s.add(o)
            for r in recommendations:
                s.merge(LiveRecommendation(**r))
            s.merge(account)
            s.commit()

    def live_recommendations(self, account: str) -> list[LiveRecommendation]:
        with Session(self.engine) as s:
            q = select(LiveRecommendation).where(LiveRecommendation.account == account)
            return list(s.exec(q.order_by(LiveRecommendation.date, LiveRecommendation.symbol)))

    # -- fingerprints: cheap aggregates that change whenever the underlying rows do ------------
    def data_fingerprint(self) -> dict[str, list[Any]]:
        """Row count and last date of the tables scores are computed from (keys sweep caches)."""
        out = {}
        dated = (
            ("prices", "date"),
            ("benchmark_prices", "date"),
            ("training_samples", "label_known_at"),
            ("sentiment", "date"),
        )
        for table, col in dated:
            n, last = self._rows(f"SELECT COUNT(*), MAX({col}) FROM {table}")[0]
            out[table] = [int(n), str(last)]
        return out

    def model_records_fingerprint(self) -> tuple[Any, ...]:
        """Count, latest ``trained_at`` and sample total of the model records."""
        sql = "SELECT COUNT(*), MAX(trained_at), SUM(training_samples) FROM model_records"
        return tuple(self._rows(sql)[0])

    def backtest_runs_fingerprint(self) -> tuple[Any, ...]:
        """Count and newest id of the stored runs (insert-only, so that is every change)."""
        return tuple(self._rows("SELECT COUNT(*), MAX(id) FROM backtest_runs")[0])

    def symbols_with_samples(self, horizon_days: int) -> set[str]:
        """Symbols that have any training sample for the horizon (known by the bound, if any)."""
        sql = "SELECT DISTINCT symbol FROM training_samples WHERE horizon_days = :h"
        return {r[0] for r in self._rows(sql, h=int(horizon_days))}

    # -- bulk writes ------------------------------------------------------------------------
    def _upsert(
        self,
        table: str,
        keys: list[str],
        rows: list[dict[str, Any]],
        conn: Connection | None = None,
    ) -> int:
        """Insert rows, replacing any with the same key (idempotent for identical input)."""
        if not rows:
            return 0
        cols = list(rows[0].keys())
        iso = self.dialect == "sqlite"
        tuples = [tuple(_sql_value(r[c], iso) for c in cols) for r in rows]
        return self.upsert_tuples(table, keys, cols, tuples, conn=conn)

    def upsert_tuples(
        self,
        table: str,
        keys: list[str],
        cols: list[str],
        tuples: Sequence[tuple[Any, ...]],
        conn: Connection | None = None,
        update: list[str] | None = None,
    ) -> int:
        """Bulk upsert through the driver's ``executemany`` (fast path used by imports).

        On a key conflict the ``update`` columns (default: every non-key column) are replaced;
        ``update=[]`` keeps the existing row.
        """
        if not tuples:
            return 0
        if table in ("prices", "securities"):
            self.drop_cache()
        mark = "?" if self.dialect == "sqlite" else "%s"
        updates = [c for c in cols if c not in keys] if update is None else update
        action = (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))}) "
            f"ON CONFLICT ({', '.join(keys)}) {action}"
        )
        if conn is not None:
            conn.exec_driver_sql(sql, list(tuples))
        else:
            with self.engine.begin() as c:
                c.exec_driver_sql(sql, list(tuples))
        return len(tuples)

    def delete_where_after(self, table: str, d: DateLike, conn: Connection) -> None:
        """Delete the rows of a dated table after ``d`` (tests use it to erase "the future")."""
        self.drop_cache()
        conn.execute(text(f"DELETE FROM {table} WHERE date > :d"), {"d": _param(to_date(d), self)})

    def scramble_after(self, table: str, d: DateLike, seed: int, conn: Connection) -> None:
        """Overwrite the bars of a dated table after ``d`` with random positive values (tests)."""
        self.drop_cache()
        k = 1.0 + (seed % 997) / 100.0
        conn.execute(
            text(
                f"UPDATE {table} SET open = open * :k, high = high * :k * 1.5, low = low * :k,"
                f" close = close * :k * 1.2, volume = volume * :k + 7 WHERE date > :d"
            ),
            {"k": k, "d": _param(to_date(d), self)},
        )


def _sql_value(v: Any, iso_dates: bool) -> Any:
    """Driver-neutral parameter values (dates as ISO text for SQLite, JSON as text)."""
    if isinstance(v, np.generic):
        v = v.item()
    if iso_dates and isinstance(v, date) and not isinstance(v, datetime):
        return v.isoformat()
    if iso_dates and isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, dict | list):
        return json.dumps(v)
    return v


def _param(d: date, store: Store) -> Any:
    return d.isoformat() if store.dialect == "sqlite" else d
