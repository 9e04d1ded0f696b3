"""Import of OHLCV bars, benchmark series, sectors and sentiment, validated row by row.

Every file is read and checked before anything is written; the write is one transaction, so a
failed import leaves the store exactly as it was. Rows are keyed by (symbol, date) and written as
upserts, so importing the same file twice changes nothing.

Rules for bars, in the order they are checked (the first broken rule names the row):
``unparseable date``, ``missing symbol``, ``NaN``, ``non-positive price``, ``high < low``,
``open outside [low, high]``, ``close outside [low, high]``, ``negative volume``,
``duplicate (symbol, date)`` (the later occurrence is the bad one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sentinel.db.store import Store
from sentinel.errors import DataImportError

Kind = Literal["prices", "benchmark", "sectors", "sentiment"]
PRICE_REQUIRED = ["date", "symbol", "open", "high", "low", "close", "volume"]
SECTOR_REQUIRED = ["symbol", "sector"]
SENTIMENT_REQUIRED = ["date", "symbol", "score"]
#: Relative slack for the [low, high] checks: bars rounded to cents must not fail on float noise.
_EPS = 1e-9


@dataclass(frozen=True)
class BadRow:
    """One rejected row: where it is and which rule it broke."""

    path: str
    line: int
    rule: str
    symbol: str | None = None
    date: str | None = None


@dataclass
class FileReport:
    """What one file contributed to an import."""

    path: str
    kind: Kind
    rows_read: int
    rows_valid: int
    symbols: int
    bad: list[BadRow] = field(default_factory=list)

    @property
    def bad_by_rule(self) -> dict[str, int]:
        return dict(Counter(b.rule for b in self.bad))


@dataclass
class ParsedFile:
    report: FileReport
    frame: pd.DataFrame


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally gzip) or Parquet file as strings-and-numbers, columns lower-cased."""
    if not path.exists():
        raise DataImportError(str(path), None, "file not found")
    try:
        if path.suffix == ".parquet" or path.name.endswith(".parquet"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype={"symbol": str, "date": str}, keep_default_na=True)
    except Exception as exc:  # the reader's message is the most useful detail
        raise DataImportError(str(path), None, "unreadable file", str(exc)) from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df


def detect_kind(df: pd.DataFrame, path: Path) -> Kind:
    """Guess a file's kind from its columns (benchmarks must be asked for explicitly)."""
    cols = set(df.columns)
    if {"open", "high", "low", "close"} & cols:
        return "prices"
    if "score" in cols and "date" in cols:
        return "sentiment"
    if "sector" in cols:
        return "sectors"
    raise DataImportError(
        str(path),
        None,
        "unknown file kind",
        f"columns {sorted(cols)}; expected bars ({', '.join(PRICE_REQUIRED)}), "
        "sectors (symbol, sector) or sentiment (date, symbol, score)",
    )


def _require(df: pd.DataFrame, path: Path, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataImportError(str(path), 1, "missing column", ", ".join(missing))


def _line_numbers(path: Path, n: int) -> np.ndarray:
    """File line of each data row: CSV rows start at line 2 (after the header)."""
    start = 1 if path.suffix == ".parquet" else 2
    return np.arange(start, start + n)


def _first_failure(masks: list[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """Per row, the index of the first failed rule (or -1)."""
    out = np.full(n, -1, dtype=np.int64)
    for i, (_, bad) in enumerate(masks):
        out[(out == -1) & bad] = i
    return out


def _collect(
    path: Path,
    kind: Kind,
    df: pd.DataFrame,
    masks: list[tuple[str, np.ndarray]],
    skip_bad: bool,
    dates: pd.Series | None,
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Apply the rule masks: raise on the first bad row, or drop and report them all."""
    n = len(df)
    first = _first_failure(masks, n)
    bad_idx = np.flatnonzero(first >= 0)
    lines = _line_numbers(path, n)
    symbols = df["symbol"].to_numpy(dtype=object) if "symbol" in df else np.full(n, None)
    raw_dates = df["date"].to_numpy(dtype=object) if "date" in df else np.full(n, None)
    if len(bad_idx) and not skip_bad:
        i = int(bad_idx[0])
        detail = f"symbol {symbols[i]}, date {raw_dates[i]}" if kind != "sectors" else symbols[i]
        raise DataImportError(
            str(path),
            int(lines[i]),
            masks[first[i]][0],
            f"{detail}; fix the row or rerun with --skip-bad",
        )
    bad = [
        BadRow(str(path), int(lines[i]), masks[first[i]][0], _s(symbols[i]), _s(raw_dates[i]))
        for i in bad_idx
    ]
    good = df.loc[first < 0].copy()
    if dates is not None:
        good["date"] = dates[first < 0].to_numpy()
    return good, bad


def _s(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _parse_dates(df: pd.DataFrame) -> pd.Series:
    raw = df["date"].astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")


def validate_bars(
    df: pd.DataFrame,
    path: Path,
    *,
    skip_bad: bool,
    kind: Kind = "prices",
    adjust: Literal["none", "adj_close"] = "none",
    symbol: str | None = None,
) -> ParsedFile:
    """Check OHLCV bars against the import rules; returns the good rows (dates parsed)."""
    if symbol is not None and "symbol" not in df.columns:
        df = df.assign(symbol=symbol)
    required = PRICE_REQUIRED if kind == "prices" else ["date", "symbol", "close"]
    _require(df, path, required)
    n = len(df)
    for c in ("open", "high", "low", "close", "volume", "adj_close"):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    dates = _parse_dates(df)
    sym = df["symbol"].astype("string").str.strip()
    df["symbol"] = sym
    price_cols = [c for c in ("open", "high", "low", "close") if c in df.columns]
    vol_required = kind == "prices"
    nan_cols = price_cols + (["volume"] if vol_required else [])
    if "adj_close" in df.columns and adjust == "adj_close":
        nan_cols.append("adj_close")
    values = df[nan_cols].to_numpy(dtype="float64")
    o = df["open"].to_numpy("float64") if "open" in df else df["close"].to_numpy("float64")
    h = df["high"].to_numpy("float64") if "high" in df else df["close"].to_numpy("float64")
    lo = df["low"].to_numpy("float64") if "low" in df else df["close"].to_numpy("float64")
    c = df["close"].to_numpy("float64")
    v = df["volume"].to_numpy("float64") if "volume" in df else np.zeros(n)
    prices = df[price_cols].to_numpy("float64")
    with np.errstate(invalid="ignore"):
        slack = _EPS * np.abs(h)
        keys = pd.DataFrame({"s": sym, "d": dates})
        masks = [
            ("unparseable date", dates.isna().to_numpy()),
            ("missing symbol", (sym.isna() | (sym == "")).to_numpy(dtype=bool)),
            ("NaN", np.isnan(values).any(axis=1)),
            ("non-positive price", (prices <= 0).any(axis=1)),
            ("high < low", h < lo),
            ("open outside [low, high]", (o < lo - slack) | (o > h + slack)),
            ("close outside [low, high]", (c < lo - slack) | (c > h + slack)),
            ("negative volume", v < 0),
            ("duplicate (symbol, date)", keys.duplicated(keep="first").to_numpy()),
        ]
    good, bad = _collect(path, kind, df, masks, skip_bad, dates)
    if adjust == "adj_close":
        if "adj_close" not in good.columns:
            raise DataImportError(str(path), 1, "missing column", "adj_close (for --adjust)")
        ratio = good["adj_close"] / good["close"]
        for col in price_cols:
            good[col] = good[col] * ratio
        if "volume" in good:
            good["volume"] = good["volume"] / ratio
    good = good.sort_values(["symbol", "date"], kind="stable")
    report = FileReport(str(path), kind, n, len(good), int(good["symbol"].nunique()), bad)
    return ParsedFile(report, good)


def validate_sectors(df: pd.DataFrame, path: Path, *, skip_bad: bool) -> ParsedFile:
    """Sectors file: symbol, sector[, name, universe_from, universe_to, ml_enabled]."""
    _require(df, path, SECTOR_REQUIRED)
    sym = df["symbol"].astype("string").str.strip()
    df["symbol"] = sym
    masks = [
        ("missing symbol", (sym.isna() | (sym == "")).to_numpy(dtype=bool)),
        ("duplicate symbol", sym.duplicated(keep="first").to_numpy(dtype=bool)),
    ]
    for col in ("universe_from", "universe_to"):
        if col in df.columns:
            parsed = pd.to_datetime(df[col], format="%Y-%m-%d", errors="coerce")
            masks.append((f"unparseable {col}", (parsed.isna() & df[col].notna()).to_numpy()))
            df[col] = parsed
    good, bad = _collect(path, "sectors", df, masks, skip_bad, None)
    report = FileReport(str(path), "sectors", len(df), len(good), len(good), bad)
    return ParsedFile(report, good)


def validate_sentiment(df: pd.DataFrame, path: Path, *, skip_bad: bool) -> ParsedFile:
    """Sentiment file: date, symbol, score in [-1, 1]."""
    _require(df, path, SENTIMENT_REQUIRED)
    dates = _parse_dates(df)
    sym = df["symbol"].astype("string").str.strip()
    df["symbol"] = sym
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy("float64")
    df["score"] = score
    keys = pd.DataFrame({"s": sym, "d": dates})
    with np.errstate(invalid="ignore"):
        masks = [
            ("unparseable date", dates.isna().to_numpy()),
            ("missing symbol", (sym.isna() | (sym == "")).to_numpy(dtype=bool)),
            ("NaN", np.isnan(score)),
            ("score outside [-1, 1]", np.abs(score) > 1),
            ("duplicate (symbol, date)", keys.duplicated(keep="first").to_numpy()),
        ]
    good, bad = _collect(path, "sentiment", df, masks, skip_bad, dates)
    report = FileReport(str(path), "sentiment", len(df), len(good), good["symbol"].nunique(), bad)
    return ParsedFile(report, good)


def parse_file(
    path: Path,
    *,
    kind: Kind | None = None,
    skip_bad: bool = False,
    adjust: Literal["none", "adj_close"] = "none",
    symbol: str | None = None,
) -> ParsedFile:
    """Read and validate one file; nothing is written."""
    df = read_table(path)
    kind = kind or detect_kind(df, path)
    if kind in ("prices", "benchmark"):
        return validate_bars(df, path, skip_bad=skip_bad, kind=kind, adjust=adjust, symbol=symbol)
    if kind == "sectors":
        return validate_sectors(df, path, skip_bad=skip_bad)
    return validate_sentiment(df, path, skip_bad=skip_bad)


def _iso(dates: pd.Series, store: Store) -> np.ndarray:
    if store.db.dialect == "sqlite":
        return dates.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    return np.array(dates.dt.date.tolist(), dtype=object)


def _opt(values: pd.Series) -> list[object]:
    """Python values with NaN as None (NULL)."""
    arr = values.to_numpy(dtype=object)
    return [None if (x is None or (isinstance(x, float) and np.isnan(x))) else x for x in arr]


def write_parsed(store: Store, parsed: list[ParsedFile]) -> None:
    """Write validated files in ONE transaction: all of them land, or none."""
    order = {"prices": 0, "benchmark": 1, "sentiment": 2, "sectors": 3}
    with store.db.transaction() as conn:
        for p in sorted(parsed, key=lambda p: order[p.report.kind]):
            df, kind = p.frame, p.report.kind
            if df.empty:
                continue
            if kind == "prices":
                _write_prices(store, conn, df)
            elif kind == "benchmark":
                cols = ["open", "high", "low", "close", "volume"]
                data = [_iso(df["date"], store), df["symbol"].to_numpy(dtype=object)]
                data += [_opt(df[c]) if c in df else [None] * len(df) for c in cols]
                store.db.upsert_tuples(
                    "benchmark_prices", ["symbol", "date"], ["date", "symbol", *cols],
                    list(zip(*data, strict=True)), conn=conn,
                )  # fmt: skip
            elif kind == "sectors":
                _write_sectors(store, conn, df)
            else:
                data = [
                    _iso(df["date"], store),
                    df["symbol"].to_numpy(dtype=object),
                    df["score"].to_numpy("float64").tolist(),
                ]
                store.db.upsert_tuples(
                    "sentiment", ["symbol", "date"], ["date", "symbol", "score"],
                    list(zip(*data, strict=True)), conn=conn,
                )  # fmt: skip


def _write_prices(store: Store, conn, df: pd.DataFrame) -> None:
    cols = ["open", "high", "low", "close", "volume"]
    has_adj = "adj_close" in df.columns
    data = [_iso(df["date"], store), df["symbol"].to_numpy(dtype=object)]
    data += [df[c].to_numpy("float64").tolist() for c in cols]
    names = ["date", "symbol", *cols]
    if has_adj:
        data.append(_opt(df["adj_close"]))
        names.append("adj_close")
    store.db.upsert_tuples(
        "prices", ["symbol", "date"], names, list(zip(*data, strict=True)), conn=conn
    )
    spans = df.groupby("symbol")["date"].min()
    existing = {s.symbol: s for s in store.market.securities()}
    new_rows: list[tuple] = []
    extend: list[tuple] = []
    for sym, first in spans.items():
        first_d = first.date()
        sec = existing.get(sym)
        if sec is None:
            new_rows.append((sym, _iso_one(first_d, store)))
        elif sec.universe_from is None or first_d < sec.universe_from:
            extend.append((sym, _iso_one(first_d, store)))
    # New symbols enter the universe with their first bar; an existing row keeps its name,
    # sector and ml flag, and only moves its start earlier when older bars arrive.
    store.db.upsert_tuples(
        "securities", ["symbol"], ["symbol", "universe_from"], new_rows, conn=conn, update=[]
    )
    store.db.upsert_tuples("securities", ["symbol"], ["symbol", "universe_from"], extend, conn=conn)


def _iso_one(d, store: Store):
    return d.isoformat() if store.db.dialect == "sqlite" else d


def _write_sectors(store: Store, conn, df: pd.DataFrame) -> None:
    cols = ["symbol", "sector"]
    for extra in ("name", "universe_from", "universe_to", "ml_enabled"):
        if extra in df.columns:
            cols.append(extra)
    rows = []
    for rec in df[cols].itertuples(index=False, name=None):
        out = []
        for c, v in zip(cols, rec, strict=True):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
                out.append(None)
            elif c in ("universe_from", "universe_to"):
                out.append(_iso_one(pd.Timestamp(v).date(), store))
            elif c == "ml_enabled":
                out.append(str(v).strip().lower() in ("1", "true", "yes", "y"))
            else:
                out.append(str(v).strip() or None)
        rows.append(tuple(out))
    store.db.upsert_tuples("securities", ["symbol"], cols, rows, conn=conn)


def import_files(
    store: Store,
    paths: list[Path],
    *,
    kind: Kind | None = None,
    skip_bad: bool = False,
    adjust: Literal["none", "adj_close"] = "none",
    symbol: str | None = None,
) -> list[FileReport]:
    """Validate every file, then write them all in one transaction; returns per-file reports."""
    parsed = [
        parse_file(p, kind=kind, skip_bad=skip_bad, adjust=adjust, symbol=symbol) for p in paths
    ]
    write_parsed(store, parsed)
    return [p.report for p in parsed]
