"""Import of OHLCV bars, benchmark series, sectors and sentiment, validated row by row.

Every file is read and checked before anything is written; the write is one transaction, so a
failed import leaves the store exactly as it was. Rows are keyed by (symbol, date) and written as
upserts, so importing the same file twice changes nothing.

Rules for bars, in the order they are checked (the first broken rule names the row):
``unparseable date``, ``date out of range``, ``missing symbol``, ``invalid symbol``,
``non-numeric value``, ``NaN``, ``non-finite value``, ``non-positive price``, ``price > 1e7``,
``volume > 1e13``, ``high < low``, ``open outside [low, high]``, ``close outside [low, high]``,
``negative volume``, ``duplicate (symbol, date)`` (the later occurrence is the bad one).

* A date is exactly an ISO day, ``YYYY-MM-DD`` (surrounding blanks allowed); ``YYYY-MM-DD 00:00:00``
  (what spreadsheets and ``DataFrame.to_csv`` write for a day) is the same day. Any other time, a
  time zone (``T00:30+09:00``, ``Z``) or trailing text is refused: a daily bar has no time of day.
  Days before 1800 or after 2200 are refused too (``date out of range``: they are typos, and
  pandas cannot hold them as timestamps).
* A symbol follows the one rule of :mod:`sentinel.symbols` (upper case, no path characters).
* A price or volume is a plain decimal number. Text (``abc``, ``nan``, ``0x10``), booleans
  (``True``) and a whole boolean column are ``non-numeric value``; an empty field is ``NaN``;
  ``inf`` (or a number that overflows to it, ``1e400``) is ``non-finite value``.
* Bounds: a price (open, high, low, close, adj_close) above :data:`MAX_PRICE` = 1e7 per share and a
  volume above :data:`MAX_VOLUME` = 1e13 shares are refused as absurd. The largest real values in
  ../shared/data are a raw price of 3,509.88 and an index volume of 1.1e10; BRK-A, the dearest US
  share, has traded below 1e6.

Errors name the file and the line of the file (blank lines and quoted line breaks counted), and
are one line: odd values are shown with ``repr``. Blank lines and rows with every field empty are
ignored.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from sentinel.data.actions import check_actions, validate_actions, write_actions
from sentinel.data.kinds import KINDS, Kind
from sentinel.data.listings import SPECS, check_overlaps, validate_intervals, write_intervals
from sentinel.db.store import Store
from sentinel.errors import DataImportError
from sentinel.symbols import SYMBOL_RULE, check_symbol, is_valid_symbol

PRICE_REQUIRED = ["date", "symbol", "open", "high", "low", "close", "volume"]
SECTOR_REQUIRED = ["symbol", "sector"]
SENTIMENT_REQUIRED = ["date", "symbol", "score"]
#: Column of a validated frame holding each row's file line (errors at write time name it).
LINE = "_line"
#: Relative tolerance under which a re-imported bar equals the stored one (float round trips).
_SAME = 1e-9
#: Relative slack for the [low, high] checks: bars rounded to cents must not fail on float noise.
_EPS = 1e-9
#: Largest accepted price per share (see the module docstring for the real figures).
MAX_PRICE = 1e7
#: Largest accepted volume (shares) of one bar.
MAX_VOLUME = 1e13
#: Accepted span of days.
MIN_DATE, MAX_DATE = pd.Timestamp("1800-01-01"), pd.Timestamp("2200-12-31")
#: Columns read as text (never guessed as numbers: symbol ``7203`` stays ``"7203"``).
_TEXT_COLUMNS = {
    "date", "symbol", "sector", "name", "ml_enabled", "universe_from", "universe_to", "from",
    "to", "index", "reason",
}  # fmt: skip
_DATE_TEXT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: 00:00:00)?"
_BREAK = re.compile(r"\r\n|\r|\n")  # one line break, as the CSV reader counts them
_ML_FLAGS = {"", "1", "0", "1.0", "0.0", "true", "false", "yes", "no", "y", "n"}
_HINTS = {
    "unparseable date": "dates are YYYY-MM-DD, without time zone",
    "date out of range": f"days from {MIN_DATE.date()} to {MAX_DATE.date()}",
    "invalid symbol": SYMBOL_RULE,
    "non-numeric value": "prices and volumes are plain decimal numbers",
    "non-finite value": "inf is not a price",
    "price > 1e7": f"prices above {MAX_PRICE:,.0f} per share are refused",
    "volume > 1e13": f"volumes above {MAX_VOLUME:.0e} are refused",
}


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
    skip_bad: bool = False  # rules checked at write time (with the store) skip rows too
    adjusted: bool = False  # bars scaled by adj_close/close on the way in (--adjust adj_close)


def _one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (line breaks and tabs shown as spaces), cut at ``limit``."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _show(v: object) -> str:
    """A cell value for a message: plain when printable, ``repr`` otherwise; short."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "<empty>"
    s = str(v)
    if not s.isprintable() or s != s.strip() or s == "":
        s = repr(s)
    return s if len(s) <= 40 else s[:39] + "…"


def _is_csv(path: Path) -> bool:
    return not (path.suffix == ".parquet" or path.name.endswith(".parquet"))


def _newlines(df: pd.DataFrame) -> np.ndarray:
    """Per row, the line breaks inside its (quoted) text cells."""
    extra = np.zeros(len(df), dtype=np.int64)
    for c in df.columns:
        col = df[c]
        if is_numeric_dtype(col) or is_datetime64_any_dtype(col):
            continue
        text = col.astype("string")
        has = text.str.contains("\n", regex=False) | text.str.contains("\r", regex=False)
        if bool(has.fillna(False).any()):
            counts = text.str.count(_BREAK.pattern).fillna(0)
            extra += counts.to_numpy(dtype=np.int64, na_value=0)
    return extra


def _csv_options(path: Path, text_names: list[str]) -> dict:
    return {
        "dtype": dict.fromkeys(text_names, str),
        "keep_default_na": False,  # only an empty field is missing: "NA" is a symbol
        "na_values": [""],
        "index_col": False,  # never take the first column as an index
        "skip_blank_lines": False,  # keeps records and lines aligned (blank rows dropped below)
        "encoding": "utf-8-sig",
    }


def _record_line(path: Path, opts: dict, header_lines: int, record: int) -> int:
    """File line where record ``record`` starts (0 = header): counts quoted line breaks."""
    if record <= 1:
        return 1 if record <= 0 else header_lines + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = pd.read_csv(path, nrows=record - 1, **opts)
        return header_lines + record + int(_newlines(head).sum())
    except Exception:  # noqa: BLE001 - the approximate line is still useful
        return header_lines + record


def _bad_utf8_line(path: Path) -> tuple[int | None, str]:
    """Line and byte of the first invalid UTF-8 sequence of a plain or gzip CSV."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        elif re.search(r"\.(bz2|zip|xz|zst|tar)$", path.name):
            return None, ""
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1, f"byte 0x{data[exc.start]:02x}"
    except Exception:  # noqa: BLE001
        pass
    return None, ""


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A CSV (optionally compressed) as a frame, and the file line of each of its rows."""
    opts, header_lines = _csv_options(path, []), 1
    try:
        first = pd.read_csv(
            path, header=None, nrows=1, dtype=str, keep_default_na=False, index_col=False,
            skip_blank_lines=False, encoding="utf-8-sig",
        )  # fmt: skip
        names = [str(c) for c in first.iloc[0].tolist()] if len(first) else []
        seen: set[str] = set()
        for name in (n.strip().lower() for n in names):
            if name and name in seen:
                raise DataImportError(str(path), 1, "duplicate column", name)
            seen.add(name)
        header_lines = 1 + sum(len(_BREAK.findall(n)) for n in names)  # quoted line breaks
        opts = _csv_options(path, [n for n in names if n.strip().lower() in _TEXT_COLUMNS])
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, **opts)
    except DataImportError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataImportError(str(path), 1, "empty file", "no header line") from exc
    except pd.errors.ParserWarning as exc:  # the first row has more fields than the header
        line = _record_line(path, opts, header_lines, 1)
        raise DataImportError(
            str(path), line, "malformed CSV", "more fields than the header has columns"
        ) from exc
    except pd.errors.ParserError as exc:
        msg = str(exc)
        m = re.search(r"in line (\d+)", msg) or re.search(r"starting at row (\d+)", msg)
        line = None
        if m:
            record = int(m.group(1)) - (1 if "in line" in m.group(0) else 0)
            line = _record_line(path, opts, header_lines, record)
        raise DataImportError(str(path), line, "malformed CSV", _one_line(msg)) from exc
    except UnicodeDecodeError as exc:
        line, what = _bad_utf8_line(path)
        if line is None:
            raise DataImportError(str(path), None, "unreadable file", _one_line(exc)) from exc
        raise DataImportError(str(path), line, "not UTF-8 text", what) from exc
    except Exception as exc:  # the reader's message is the most useful detail
        raise DataImportError(str(path), None, "unreadable file", _one_line(exc)) from exc
    extra = _newlines(df)
    lines = header_lines + 1 + np.arange(len(df)) + np.concatenate([[0], np.cumsum(extra)[:-1]])
    blank = df.isna().all(axis=1).to_numpy()  # blank lines and rows of empty fields
    if blank.any():
        df, lines = df.loc[~blank].reset_index(drop=True), lines[~blank]
    return df, lines.astype(np.int64)


def _read(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The table of a file, columns lower-cased, and the line (CSV) or row (Parquet) of each row."""
    if not path.exists():
        raise DataImportError(str(path), None, "file not found")
    if _is_csv(path):
        df, lines = _read_csv(path)
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001
            raise DataImportError(str(path), None, "unreadable file", _one_line(exc)) from exc
        lines = np.arange(1, len(df) + 1)
    df.columns = [str(c).strip().lower() for c in df.columns]
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise DataImportError(str(path), 1, "duplicate column", _show(dup[0]))
    return df, lines


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (optionally gzip) or Parquet file as strings-and-numbers, columns lower-cased."""
    return _read(path)[0]


def detect_kind(df: pd.DataFrame, path: Path) -> Kind:
    """Guess a file's kind from its columns (benchmarks must be asked for explicitly)."""
    cols = set(df.columns)
    if {"open", "high", "low", "close"} & cols:
        return "prices"
    if {"dividend", "split_coefficient", "split"} & cols:
        return "actions"
    if "from" in cols:
        return (
            "membership"
            if "index" in cols
            else ("sector_history" if "sector" in cols else "listings")
        )
    if "score" in cols and "date" in cols:
        return "sentiment"
    if "sector" in cols:
        return "sectors"
    raise DataImportError(
        str(path),
        1,
        "unknown file kind",
        _one_line(
            f"columns {sorted(cols)}; expected bars ({', '.join(PRICE_REQUIRED)}), "
            "sectors (symbol, sector), sentiment (date, symbol, score), actions (date, symbol, "
            "dividend, split_coefficient), listings (symbol, from, to), sector_history (symbol, "
            "sector, from, to) or membership (index, symbol, from, to)"
        ),
    )


def _require(df: pd.DataFrame, path: Path, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataImportError(str(path), 1, "missing column", ", ".join(missing))


def _line_numbers(path: Path, n: int) -> np.ndarray:
    """File line of each data row of a simple file: CSV rows start at line 2 (after the header)."""
    start = 2 if _is_csv(path) else 1
    return np.arange(start, start + n)


def _first_failure(masks: list[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """Per row, the index of the first failed rule (or -1)."""
    out = np.full(n, -1, dtype=np.int64)
    for i, (_, bad) in enumerate(masks):
        out[(out == -1) & np.asarray(bad, dtype=bool)] = i
    return out


def _collect(
    path: Path,
    kind: Kind,
    df: pd.DataFrame,
    masks: list[tuple[str, np.ndarray]],
    skip_bad: bool,
    dates: pd.Series | None,
    lines: np.ndarray | None = None,
    raw: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Apply the rule masks: raise on the first bad row, or drop and report them all.

    ``raw`` holds the symbol and date cells as read (shown in messages and reports).
    """
    n = len(df)
    first = _first_failure(masks, n)
    bad_idx = np.flatnonzero(first >= 0)
    lines = _line_numbers(path, n) if lines is None else lines
    src = df if raw is None else raw
    symbols = src["symbol"].to_numpy(dtype=object) if "symbol" in src else np.full(n, None)
    raw_dates = src["date"].to_numpy(dtype=object) if "date" in src else np.full(n, None)
    if len(bad_idx) and not skip_bad:
        i = int(bad_idx[0])
        rule = masks[first[i]][0]
        detail = f"symbol {_show(symbols[i])}"
        if kind != "sectors":
            detail += f", date {_show(raw_dates[i])}"
        hint = _HINTS.get(rule)
        raise DataImportError(
            str(path),
            int(lines[i]),
            rule,
            f"{detail}; " + (f"{hint}; " if hint else "") + "fix the row or rerun with --skip-bad",
        )
    bad = [
        BadRow(str(path), int(lines[i]), masks[first[i]][0], _s(symbols[i]), _s(raw_dates[i]))
        for i in bad_idx
    ]
    good = df.loc[first < 0].copy()
    if dates is not None:
        good["date"] = dates[first < 0].to_numpy()
    good[LINE] = np.asarray(lines)[first < 0]  # for errors raised at write time
    return good, bad


def _s(v: object) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v)


def _date_text(v: object) -> str:
    """A date cell of an object column as text ('' when it is no date at all)."""
    if isinstance(v, str):
        return v
    if isinstance(v, dt.datetime):  # pd.Timestamp too: the time is checked as text
        return "" if v.tzinfo is not None else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    return ""


def _dates(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Days (datetime64, NaT when not exactly an ISO day) and a mask of days out of range."""
    if is_datetime64_any_dtype(col):
        if getattr(col.dt, "tz", None) is not None:  # a zone: not a plain day
            parsed = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns]")
        else:
            parsed = col.where(col == col.dt.normalize())  # a time of day is refused
    else:
        if col.dtype == object:
            col = col.map(_date_text, na_action="ignore")
        text = col.astype("string").str.strip()
        ok = text.str.fullmatch(_DATE_TEXT).fillna(False).to_numpy(dtype=bool)
        day = text.str.slice(0, 10).where(ok)
        parsed = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
    parsed = pd.Series(parsed.to_numpy(), index=col.index)
    with np.errstate(invalid="ignore"):
        out = (parsed.notna() & ((parsed < MIN_DATE) | (parsed > MAX_DATE))).to_numpy(dtype=bool)
    return parsed, out


def _numbers(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN when empty or not a number) and a mask of non-numeric cells."""
    n = len(col)
    if is_bool_dtype(col):  # True/False is not a price, even though it converts to 1/0
        return np.full(n, np.nan), col.notna().to_numpy(dtype=bool)
    if is_numeric_dtype(col):
        return col.to_numpy(dtype="float64", na_value=np.nan), np.zeros(n, dtype=bool)
    boolean = np.zeros(n, dtype=bool)
    if col.dtype == object:
        boolean = np.fromiter((isinstance(x, bool | np.bool_) for x in col), bool, n)
    text = col.astype("string").str.strip()
    empty = (text.isna() | (text == "")).to_numpy(dtype=bool)
    values = pd.to_numeric(text.where(~empty), errors="coerce")
    values = np.asarray(values.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    values[boolean] = np.nan
    return values, (~empty & np.isnan(values)) | boolean


def _symbols(df: pd.DataFrame) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Stripped symbols, a mask of missing ones and a mask of those breaking the symbol rule."""
    sym = df["symbol"].astype("string").str.strip()
    missing = (sym.isna() | (sym == "")).to_numpy(dtype=bool)
    good = [s for s in pd.unique(sym.dropna()) if is_valid_symbol(s)]
    invalid = ~missing & ~sym.isin(good).to_numpy(dtype=bool)
    return sym, missing, invalid


def validate_bars(
    df: pd.DataFrame,
    path: Path,
    *,
    skip_bad: bool,
    kind: Kind = "prices",
    adjust: Literal["none", "adj_close"] = "none",
    symbol: str | None = None,
    lines: np.ndarray | None = None,
) -> ParsedFile:
    """Check OHLCV bars against the import rules; returns the good rows (dates parsed)."""
    if symbol is not None and "symbol" not in df.columns:
        check_symbol(symbol, where=f"{path}: --symbol")
        df = df.assign(symbol=symbol)
    required = PRICE_REQUIRED if kind == "prices" else ["date", "symbol", "close"]
    _require(df, path, required)
    if adjust == "adj_close" and "adj_close" not in df.columns:
        raise DataImportError(str(path), 1, "missing column", "adj_close (for --adjust)")
    n = len(df)
    raw = df[["symbol", "date"]].copy()
    dates, out_of_range = _dates(df["date"])
    sym, no_symbol, bad_symbol = _symbols(df)
    df["symbol"] = sym
    num_cols = [c for c in ("open", "high", "low", "close", "adj_close", "volume") if c in df]
    nums: dict[str, np.ndarray] = {}
    non_numeric = np.zeros(n, dtype=bool)
    for c in num_cols:
        nums[c], text = _numbers(df[c])
        df[c] = nums[c]
        non_numeric |= text
    price_cols = [c for c in ("open", "high", "low", "close") if c in df.columns]
    bounded = price_cols + (["adj_close"] if "adj_close" in df.columns else [])
    nan_cols = price_cols + (["volume"] if kind == "prices" else [])
    if adjust == "adj_close":
        nan_cols.append("adj_close")

    def any_of(cols: list[str], test) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for col in cols:
            out |= test(nums[col])
        return out

    c = nums["close"]
    o, h, lo = (nums.get(k, c) for k in ("open", "high", "low"))
    v = nums.get("volume", np.zeros(n))
    with np.errstate(invalid="ignore"):
        slack = _EPS * np.abs(h)
        keys = pd.DataFrame({"s": sym, "d": dates})
        masks = [
            ("unparseable date", dates.isna().to_numpy()),
            ("date out of range", out_of_range),
            ("missing symbol", no_symbol),
            ("invalid symbol", bad_symbol),
            ("non-numeric value", non_numeric),
            ("NaN", any_of(nan_cols, np.isnan)),
            ("non-finite value", any_of(num_cols, np.isinf)),
            ("non-positive price", any_of(bounded, lambda x: x <= 0)),
            ("price > 1e7", any_of(bounded, lambda x: x > MAX_PRICE)),
            ("volume > 1e13", v > MAX_VOLUME),
            ("high < low", h < lo),
            ("open outside [low, high]", (o < lo - slack) | (o > h + slack)),
            ("close outside [low, high]", (c < lo - slack) | (c > h + slack)),
            ("negative volume", v < 0),
            ("duplicate (symbol, date)", keys.duplicated(keep="first").to_numpy()),
        ]
    good, bad = _collect(path, kind, df, masks, skip_bad, dates, lines, raw)
    if adjust == "adj_close":
        ratio = good["adj_close"] / good["close"]
        for col in price_cols:
            good[col] = good[col] * ratio
        if "volume" in good:
            good["volume"] = good["volume"] / ratio
    good = good.sort_values(["symbol", "date"], kind="stable")
    report = FileReport(str(path), kind, n, len(good), int(good["symbol"].nunique()), bad)
    return ParsedFile(report, good)


def validate_sectors(
    df: pd.DataFrame, path: Path, *, skip_bad: bool, lines: np.ndarray | None = None
) -> ParsedFile:
    """Sectors file: symbol, sector[, name, universe_from, universe_to, ml_enabled]."""
    _require(df, path, SECTOR_REQUIRED)
    raw = df[["symbol"]].copy()
    sym, no_symbol, bad_symbol = _symbols(df)
    df["symbol"] = sym
    control = np.zeros(len(df), dtype=bool)
    for col in ("sector", "name"):
        if col in df.columns:
            text = df[col].astype("string")
            control |= (
                text.str.contains(r"[\x00-\x1f\x7f]", regex=True).fillna(False).to_numpy(bool)
            )
    masks = [
        ("missing symbol", no_symbol),
        ("invalid symbol", bad_symbol),
        ("duplicate symbol", sym.duplicated(keep="first").to_numpy(dtype=bool)),
        ("control character in sector or name", control),
    ]
    for col in ("universe_from", "universe_to"):
        if col in df.columns:
            parsed, out_of_range = _dates(df[col])
            masks.append((f"unparseable {col}", (parsed.isna() & df[col].notna()).to_numpy()))
            masks.append((f"{col} out of range", out_of_range))
            df[col] = parsed
    if "ml_enabled" in df.columns:
        flag = df["ml_enabled"].map(lambda x: str(x).strip().lower(), na_action="ignore")
        bad_flag = ~(flag.isna() | flag.isin(_ML_FLAGS)).to_numpy(dtype=bool)
        masks.append(("invalid ml_enabled (1/0, true/false, yes/no)", bad_flag))
    good, bad = _collect(path, "sectors", df, masks, skip_bad, None, lines, raw)
    report = FileReport(str(path), "sectors", len(df), len(good), len(good), bad)
    return ParsedFile(report, good)


def validate_sentiment(
    df: pd.DataFrame, path: Path, *, skip_bad: bool, lines: np.ndarray | None = None
) -> ParsedFile:
    """Sentiment file: date, symbol, score in [-1, 1]."""
    _require(df, path, SENTIMENT_REQUIRED)
    raw = df[["symbol", "date"]].copy()
    dates, out_of_range = _dates(df["date"])
    sym, no_symbol, bad_symbol = _symbols(df)
    df["symbol"] = sym
    score, non_numeric = _numbers(df["score"])
    df["score"] = score
    keys = pd.DataFrame({"s": sym, "d": dates})
    with np.errstate(invalid="ignore"):
        masks = [
            ("unparseable date", dates.isna().to_numpy()),
            ("date out of range", out_of_range),
            ("missing symbol", no_symbol),
            ("invalid symbol", bad_symbol),
            ("non-numeric value", non_numeric),
            ("NaN", np.isnan(score)),
            ("score outside [-1, 1]", np.abs(score) > 1),
            ("duplicate (symbol, date)", keys.duplicated(keep="first").to_numpy()),
        ]
    good, bad = _collect(path, "sentiment", df, masks, skip_bad, dates, lines, raw)
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
    parsed = _parse(path, kind, skip_bad, adjust, symbol)
    parsed.skip_bad = skip_bad
    parsed.adjusted = adjust == "adj_close" and parsed.report.kind == "prices"
    return parsed


def _parse(
    path: Path,
    kind: Kind | None,
    skip_bad: bool,
    adjust: Literal["none", "adj_close"],
    symbol: str | None,
) -> ParsedFile:
    df, lines = _read(path)
    kind = kind or detect_kind(df, path)
    if kind in ("prices", "benchmark"):
        return validate_bars(
            df, path, skip_bad=skip_bad, kind=kind, adjust=adjust, symbol=symbol, lines=lines
        )
    if kind == "sectors":
        return validate_sectors(df, path, skip_bad=skip_bad, lines=lines)
    if kind == "actions":
        return validate_actions(df, path, skip_bad=skip_bad, lines=lines)
    if kind in SPECS:
        return validate_intervals(df, path, kind, skip_bad=skip_bad, lines=lines)
    return validate_sentiment(df, path, skip_bad=skip_bad, lines=lines)


def _iso(dates: pd.Series, store: Store) -> np.ndarray:
    if store.db.dialect == "sqlite":
        return dates.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    return np.array(dates.dt.date.tolist(), dtype=object)


def _opt(values: pd.Series) -> list[object]:
    """Python values with NaN as None (NULL)."""
    arr = values.to_numpy(dtype=object)
    return [None if (x is None or (isinstance(x, float) and np.isnan(x))) else x for x in arr]


def _refuse_changed_bars(store: Store, conn, table: str, df: pd.DataFrame, path: str) -> None:
    """Stop an import that would overwrite stored bars with different values.

    Importing the 18-year file after the 5-year one would otherwise silently replace overlapping
    bars with differently adjusted ones; ``--replace`` says that is meant.
    """
    cols = [c for c in ("open", "high", "low", "close", "volume") if c in df.columns]
    symbols = sorted(df["symbol"].unique())
    stored: list[tuple] = []
    for i in range(0, len(symbols), 500):
        chunk = symbols[i : i + 500]
        marks = ", ".join(f":s{k}" for k in range(len(chunk)))
        stored += store.db.rows(
            f"SELECT symbol, date, {', '.join(cols)} FROM {table} WHERE symbol IN ({marks})",
            **{f"s{k}": s for k, s in enumerate(chunk)},
        )
    if not stored:
        return
    old = pd.DataFrame(stored, columns=["symbol", "date", *cols])
    old["date"] = pd.to_datetime(old["date"].astype(str))
    both = df.merge(old, on=["symbol", "date"], suffixes=("", "_stored"))
    if both.empty:
        return
    differs = np.zeros(len(both), dtype=bool)
    for c in cols:
        new, was = both[c].to_numpy("float64"), both[f"{c}_stored"].to_numpy("float64")
        with np.errstate(invalid="ignore"):
            differs |= ~np.isclose(new, was, rtol=_SAME, atol=0.0, equal_nan=True)
    if not differs.any():
        return
    row = both.loc[differs].sort_values(LINE).iloc[0]
    c = next(
        c for c in cols
        if not np.isclose(row[c], row[f"{c}_stored"], rtol=_SAME, atol=0.0, equal_nan=True)
    )  # fmt: skip
    raise DataImportError(
        path,
        int(row[LINE]),
        "overlaps stored bars with different values",
        f"symbol {row['symbol']}, date {row['date'].date()}: stored {c} {row[f'{c}_stored']:g}, "
        f"file {row[c]:g}, {int(differs.sum()):,} such bars (differently adjusted files?); "
        "rerun with --replace to overwrite them",
    )


def _refuse_double_adjustment(store: Store, parsed: list[ParsedFile]) -> None:
    """Adjusted bars (``--adjust adj_close``) and corporate actions would adjust twice."""
    adjusted = next((p for p in parsed if p.adjusted), None)
    if adjusted is None:
        return
    if any(p.report.kind == "actions" for p in parsed) or store.db.rows(
        "SELECT 1 FROM corporate_actions LIMIT 1"
    ):
        raise DataImportError(
            adjusted.report.path, None, "adjusted bars with corporate actions",
            "--adjust adj_close already applies the dividends and splits that the actions apply "
            "point in time; import raw bars (no --adjust) beside an actions file",
        )  # fmt: skip


def write_parsed(store: Store, parsed: list[ParsedFile], *, replace: bool = False) -> None:
    """Write validated files in ONE transaction: all of them land, or none.

    Bars that would overwrite stored bars with different values are refused unless ``replace``.
    """
    order = {k: i for i, k in enumerate(KINDS)}
    prices = [p.frame for p in parsed if p.report.kind == "prices"]
    _refuse_double_adjustment(store, parsed)
    for p in parsed:  # checks that need the store: before anything is written
        if p.report.kind == "actions":
            p.frame = check_actions(store, p, prices)
        elif p.report.kind in SPECS:
            check_overlaps(store, p.frame, p.report.path, p.report.kind)
    with store.db.transaction() as conn:
        for p in sorted(parsed, key=lambda p: order[p.report.kind]):
            df, kind = p.frame, p.report.kind
            if df.empty:
                continue
            if kind in ("prices", "benchmark") and not replace:
                table = "prices" if kind == "prices" else "benchmark_prices"
                _refuse_changed_bars(store, conn, table, df, p.report.path)
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
            elif kind == "actions":
                write_actions(store, conn, df)
            elif kind in SPECS:
                write_intervals(store, conn, df, kind)
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


#: Bars turned into driver tuples at a time (one transaction whatever the count): the tuples of
#: a 500-symbol x 5-year import at once were ~250 MB, the peak of a new store's run.
WRITE_CHUNK = 100_000


def _write_prices(store: Store, conn, df: pd.DataFrame) -> None:
    cols = ["open", "high", "low", "close", "volume"]
    names = ["date", "symbol", *cols] + (["adj_close"] if "adj_close" in df.columns else [])
    for at in range(0, len(df), WRITE_CHUNK):
        part = df.iloc[at : at + WRITE_CHUNK]
        data = [_iso(part["date"], store), part["symbol"].to_numpy(dtype=object)]
        data += [part[c].to_numpy("float64").tolist() for c in cols]
        if "adj_close" in df.columns:
            data.append(_opt(part["adj_close"]))
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
    if "ml_enabled" not in cols:
        store.db.upsert_tuples("securities", ["symbol"], cols, rows, conn=conn)
        return
    # An empty ml_enabled cell keeps the stored flag (or the default for a new symbol).
    k = cols.index("ml_enabled")
    with_flag = [r for r in rows if r[k] is not None]
    without = [r[:k] + r[k + 1 :] for r in rows if r[k] is None]
    store.db.upsert_tuples("securities", ["symbol"], cols, with_flag, conn=conn)
    rest = cols[:k] + cols[k + 1 :]
    store.db.upsert_tuples("securities", ["symbol"], rest, without, conn=conn)


def import_files(
    store: Store,
    paths: list[Path],
    *,
    kind: Kind | None = None,
    skip_bad: bool = False,
    adjust: Literal["none", "adj_close"] = "none",
    symbol: str | None = None,
    replace: bool = False,
) -> list[FileReport]:
    """Validate every file, then write them all in one transaction; returns per-file reports."""
    parsed = [
        parse_file(p, kind=kind, skip_bad=skip_bad, adjust=adjust, symbol=symbol) for p in paths
    ]
    write_parsed(store, parsed, replace=replace)
    return [p.report for p in parsed]
