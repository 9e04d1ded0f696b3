"""The plumbing every repository shares: the SQLAlchemy engine and the in-memory price cache.

No domain reads live here and nothing is bounded by a date: connections and transactions, the
raw-row helper, bulk upserts, row counts and fingerprints. One :class:`Database` is shared by a
store and all its views, so a preloaded price cache serves every view of the same database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine
from sqlmodel import SQLModel

from sentinel.db.cache import PriceCache
from sentinel.db.samples import SampleCache
from sentinel.errors import NotFoundError, SentinelError


class StoredDataError(SentinelError):
    """A stored value cannot be read back (e.g. a features column that is not a list of numbers):
    the message names the table and the row."""


class Database:
    """The engine of one database, the helpers that run SQL on it and the shared price cache."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._prices: PriceCache | None = None  # the price cache, shared with every view
        self.samples: SampleCache | None = None  # the decoded training samples (SampleCache)

    # -- the in-memory price cache -----------------------------------------------------------
    def keep_cache(self, cache: PriceCache) -> None:
        """Share ``cache`` with every view of this database (``MarketView.preload`` builds it)."""
        self._prices = cache

    @property
    def cache(self) -> PriceCache | None:
        """The preloaded price cache, or None (reads then go to SQL)."""
        return self._prices

    def drop_cache(self) -> None:
        self._prices = None

    # -- connections -------------------------------------------------------------------------
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

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run a read on the driver's own cursor: plain tuples, no per-row result processing.

        ``sql`` uses ``:name`` parameters (sqlite3's own style); other drivers get ``%(name)s``.
        """
        with self._cursor(sql, params) as cur:
            return cur.fetchall()

    def row_chunks(self, sql: str, size: int, **params: Any) -> Iterator[list[tuple[Any, ...]]]:
        """:meth:`rows` in lists of at most ``size`` rows, read as the caller consumes them: a
        caller that reduces each chunk (decodes it to arrays) never holds every row's tuples."""
        with self._cursor(sql, params) as cur:
            while chunk := cur.fetchmany(size):
                yield chunk

    @contextmanager
    def _cursor(self, sql: str, params: dict[str, Any]) -> Iterator[Any]:
        """The driver's cursor with ``sql`` executed (parameters in the driver's style)."""
        if self.dialect == "sqlite":  # SQLite stores dates as ISO text; compare as text
            params = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
        else:
            sql = _pyformat(sql)
        with self.engine.connect() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(sql, params)
                yield cur
            finally:
                cur.close()

    # -- counts and fingerprints: cheap aggregates that change whenever the rows do ---------------
    def count(self, table: str) -> int:
        """Row count of a sentinel table (name checked against the schema)."""
        if table not in SQLModel.metadata.tables:
            raise NotFoundError(f"no table {table!r}")
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def data_fingerprint(self) -> dict[str, list[Any]]:
        """Row count and last date of the tables scores are computed from (keys sweep caches)."""
        out = {}
        dated = (
            ("prices", "date"),
            ("benchmark_prices", "date"),
            ("training_samples", "label_known_at"),
            ("sentiment", "date"),
            ("corporate_actions", "date"),  # they change the adjusted bars scores are made from
            ("listings", "listed_from"),
            ("sector_history", "valid_from"),
            ("index_membership", "valid_from"),
        )
        for table, col in dated:
            n, last = self.rows(f"SELECT COUNT(*), MAX({col}) FROM {table}")[0]
            out[table] = [int(n), str(last)]
        return out

    # -- bulk writes ------------------------------------------------------------------------
    def upsert(
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
        if table in (
            "prices",
            "securities",
            "corporate_actions",
            "listings",
            "sector_history",
            "index_membership",
        ):  # the cache and its memo of dated tables (MarketView._spans) follow these
            self.drop_cache()
        if table == "training_samples":
            self.samples = None
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


def decode_json(value: Any) -> Any:
    """Stored JSON columns may come back as text on some drivers."""
    return json.loads(value) if isinstance(value, str) else value


def decode_float_rows(values: Sequence[Any], where: Callable[[int], str]) -> list[np.ndarray]:
    """Stored JSON lists of numbers (text, or lists from drivers that decode JSON) as float64 rows.

    Rows of one length are views of a single 2-D array: ~280 bytes a row of 20 features, where a
    Python list of floats costs ~700 (a 500-symbol walk-forward run reads 122,532 samples, and
    the lists held ~200 MB). Each call decodes afresh, so every caller owns its rows. The values
    are ``json.loads``'s floats, unchanged. A value that is not a list of numbers raises
    :class:`StoredDataError` naming the row (``where(i)``).
    """
    decoded: list[Any] = []
    for i, v in enumerate(values):
        try:
            decoded.append(json.loads(v) if isinstance(v, str) else v)
        except ValueError as exc:
            raise StoredDataError(f"{where(i)} is not valid JSON ({exc})") from None
    if not decoded:
        return []
    try:
        block = np.array(decoded)
    except ValueError:  # rows of different lengths (mixed feature sets): one array each
        return [_float_row(v, where, i) for i, v in enumerate(decoded)]
    if block.ndim != 2 or block.dtype.kind not in "fiu":
        for i, v in enumerate(decoded):
            _float_row(v, where, i)  # raises at the first bad row
    return list(block.astype("float64", copy=False))


def _float_row(value: Any, where: Callable[[int], str], i: int) -> np.ndarray:
    try:
        row = np.array(value)
    except ValueError:
        row = np.array(None)
    if row.ndim != 1 or row.dtype.kind not in "fiu":
        raise StoredDataError(f"{where(i)} is not a JSON list of numbers: {str(value)[:60]}")
    return row.astype("float64")


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """``:name`` parameters to the ``%(name)s`` style of psycopg and most other drivers."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


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
