"""The workloads. Later issues add theirs here."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench._harness import Result, median_time, shared, timed, workload


def _fresh_store(tmp: str):
    from sentinel.db import Store

    return Store(f"sqlite:///{Path(tmp) / 'bench.db'}")


def _bare_import(path: Path, db: Path) -> None:
    """Reference: a bare pandas read plus one SQLite bulk insert of the same rows."""
    df = pd.read_csv(path).dropna()
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE p (symbol TEXT, date TEXT, open REAL, high REAL, low REAL, close REAL,"
        " adj_close REAL, volume REAL, PRIMARY KEY (symbol, date))"
    )
    con.executemany(
        "INSERT OR REPLACE INTO p VALUES (?,?,?,?,?,?,?,?)",
        df[["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]].itertuples(
            index=False, name=None
        ),
    )
    con.commit()
    con.close()


def _import(name: str, target: float | None) -> list[Result]:
    from sentinel.data.importer import import_files

    path = shared(name)
    with tempfile.TemporaryDirectory() as tmp:
        ref = timed(lambda: _bare_import(path, Path(tmp) / "bare.db"))
        store = _fresh_store(tmp)
        secs = timed(lambda: import_files(store, [path], skip_bad=True))
        rows = store.db.count("prices")
    return [
        Result(f"import {name}", "seconds (--skip-bad)", secs, "s", target, ref,
               f"{rows:,} rows stored; reference: bare pandas read + one SQLite bulk insert"),
    ]  # fmt: skip


@workload("import_5y")
def import_5y() -> list[Result]:
    """Import sp500_5y_prices.csv.gz (456k rows) with --skip-bad; target < 5 s."""
    return _import("sp500_5y_prices.csv.gz", 5.0)


@workload("import_18y")
def import_18y() -> list[Result]:
    """Import sp500_av_1999-2017_prices.csv.gz (1.48M rows); reported, no target."""
    return _import("sp500_av_1999-2017_prices.csv.gz", None)


@workload("reads")
def reads() -> list[Result]:
    """As-of reads on the 5-year file: one symbol's 250 days (< 1 ms), all symbols' (< 200 ms)."""
    from sentinel.data.importer import import_files

    path = shared("sp500_5y_prices.csv.gz")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = _fresh_store(tmp)
        import_files(store, [path], skip_bad=True)
        days = store.market.trading_days()[300:]
        symbols = store.market.universe_symbols(days[-1])
        sym_idx = rng.integers(0, len(symbols), 400)
        day_idx = rng.integers(0, len(days), 400)
        picks = [(symbols[i], days[j]) for i, j in zip(sym_idx, day_idx, strict=True)]
        it = iter(picks * 3)

        def one_read():
            sym, end = next(it)
            return store.market.get_prices(sym, days=250, end_date=end)

        one = median_time(one_read, repeat=300, warmup=20)
        con = sqlite3.connect(Path(tmp) / "bench.db")
        it2 = iter(picks * 3)
        bare_one = median_time(
            lambda: con.execute(
                "SELECT date, open, high, low, close, adj_close, volume FROM prices"
                " WHERE symbol = ? AND date <= ? ORDER BY date DESC LIMIT 250",
                (lambda s, d: (s, d.isoformat()))(*next(it2)),
            ).fetchall(),
            repeat=300, warmup=20,
        )  # fmt: skip
        ends = iter([days[int(k)] for k in rng.integers(0, len(days), 40)])
        panel = median_time(
            lambda: store.market.get_price_panel(days=250, end_date=next(ends)), 15, 2
        )
        ends2 = iter([days[int(k)] for k in rng.integers(0, len(days), 40)])

        def bare_panel():
            end = next(ends2)
            start = days[max(0, days.index(end) - 249)]
            return con.execute(
                "SELECT date, symbol, open, high, low, close, adj_close, volume FROM prices"
                " WHERE date BETWEEN ? AND ?", (start.isoformat(), end.isoformat()),
            ).fetchall()  # fmt: skip

        bare = median_time(bare_panel, 15, 2)
        con.close()
    return [
        Result("reads", "one symbol, last 250 days as of a date (median)", one * 1e3, "ms", 1.0,
               bare_one * 1e3, "reference: bare indexed SQLite query, tuples only"),
        Result("reads", "all symbols, last 250 days as of a date (median)", panel * 1e3, "ms",
               200.0, bare * 1e3, f"{len(symbols)} symbols; reference: bare SQLite range query"),
    ]  # fmt: skip
