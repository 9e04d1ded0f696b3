"""Fuzzing the importer: any document either loads clean rows or is refused in one line.

Random CSV documents (well-formed and broken; random text, numbers, dates, symbols, bytes) are
imported into one store. Each import either succeeds, and then every stored row obeys the rules, or
raises a :class:`~sentinel.errors.SentinelError` whose message is one line naming the file and (for
:class:`~sentinel.errors.DataImportError`) a line, and the store is exactly as it was before.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
import time

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sentinel.data.importer import MAX_PRICE, MAX_VOLUME, import_files
from sentinel.errors import DataImportError, SentinelError
from sentinel.symbols import InvalidSymbolError, is_valid_symbol

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SECONDS_PER_IMPORT = 10.0
COLUMNS = {
    "prices": ["date", "symbol", "open", "high", "low", "close", "volume"],
    "benchmark": ["date", "symbol", "close"],
    "sectors": ["symbol", "sector", "name", "ml_enabled", "universe_from"],
    "sentiment": ["date", "symbol", "score"],
}
TABLES = ("prices", "benchmark_prices", "securities", "sentiment")
_n = itertools.count()

JUNK = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e308",
            "1e400",
            "inf",
            "-Infinity",
            "nan",
            "NaN",
            "NA",
            "None",
            "True",
            "false",
            "0x10",
            "1_000",
            "１２",
            "1,5",
            '"',
            "''",
            "2024-01-02garbage",
            "2024-01-02T00:30+09:00",
            "2024-01-02 00:00:00",
            "0001-01-01",
            "9999-12-31",
            "../../evil",
            "aapl",
            "ÄÖÜ",
            "A B",
            "^GSPC",
            "BRK.B",
            "\x00",
            "\n",
            "\r\n",
            "a\nb",
        ]
    ),  # fmt: skip
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**25), 10**25).map(str),
    st.text(max_size=12),
)
DATES = st.one_of(st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)), st.dates()).map(
    lambda d: d.isoformat()
)
SYMBOLS = st.one_of(
    st.sampled_from(["AAA", "BBB", "BRK.B", "^GSPC"]), st.from_regex(r"[A-Z]{1,5}", fullmatch=True)
)
PRICES = st.floats(0.01, 1000).map(lambda x: f"{x:.2f}")
SCORES = st.floats(-1, 1).map(lambda x: f"{x:.3f}")
VALUES = {
    "date": DATES, "symbol": SYMBOLS, "open": PRICES, "high": PRICES, "low": PRICES,
    "close": PRICES, "volume": st.integers(0, 10**9).map(str), "name": st.text(max_size=8),
    "sector": st.sampled_from(["Energy", ""]), "ml_enabled": st.sampled_from(["", "1", "maybe"]),
    "universe_from": DATES, "score": SCORES,
}  # fmt: skip


@st.composite
def documents(draw):
    """(kind passed to the importer, --symbol, text of a CSV document)."""
    kind = draw(st.sampled_from(list(COLUMNS)))
    cols = list(COLUMNS[kind])
    if draw(st.booleans()):
        cols = draw(st.permutations(cols))
    if draw(st.integers(0, 9)) == 0:
        cols = [*cols, draw(st.text(max_size=6))]  # an odd extra column
    if draw(st.integers(0, 9)) == 0:
        cols = cols[1:]  # a missing column
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        # mostly plausible values, one field in five replaced by junk
        row = [draw(JUNK if draw(st.integers(0, 4)) == 0 else VALUES.get(c, JUNK)) for c in cols]
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, len(row)))] or row + ["extra"]  # too few / many fields
        rows.append(row)
    buf = io.StringIO()
    if draw(st.integers(0, 3)) > 0:
        csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(
            [cols, *rows]
        )
    else:  # naive join: unbalanced quotes, stray separators
        buf.write(
            "\n".join(",".join(r) for r in [cols, *rows])
            + draw(st.sampled_from(["", "\n", "\n\n"]))
        )
    symbol = draw(st.sampled_from([None, "SPY", "bad/sym"])) if kind == "benchmark" else None
    return (None if draw(st.booleans()) and kind != "benchmark" else kind), symbol, buf.getvalue()


def _snapshot(store) -> dict[str, list[str]]:
    return {t: sorted(map(repr, store.db.rows(f"SELECT * FROM {t}"))) for t in TABLES}


def _check_stored_rows(store) -> None:
    for sym, d, o, h, lo, c, v in store.db.rows(
        "SELECT symbol, date, open, high, low, close, volume FROM prices"
    ):
        assert is_valid_symbol(sym) and len(str(d)) == 10
        for x in (o, h, lo, c):
            assert math.isfinite(x) and 0 < x <= MAX_PRICE
        assert math.isfinite(v) and 0 <= v <= MAX_VOLUME
    for sym, d, c in store.db.rows("SELECT symbol, date, close FROM benchmark_prices"):
        assert is_valid_symbol(sym) and len(str(d)) == 10
        assert c is None or (math.isfinite(c) and 0 < c <= MAX_PRICE)
    for sym, d, score in store.db.rows("SELECT symbol, date, score FROM sentiment"):
        assert is_valid_symbol(sym) and len(str(d)) == 10 and -1 <= score <= 1
    for (sym,) in store.db.rows("SELECT symbol FROM securities"):
        assert is_valid_symbol(sym)


def _import_once(store, path, kind, symbol, skip_bad, text: str | None) -> None:
    before = _snapshot(store)
    t0 = time.monotonic()
    try:
        import_files(store, [path], kind=kind, skip_bad=skip_bad, symbol=symbol)
    except SentinelError as exc:  # anything else fails the test, with its traceback
        msg = str(exc)
        event(f"refused: {getattr(exc, 'rule', type(exc).__name__)}")
        assert "\n" not in msg and "\r" not in msg, msg
        assert str(path) in msg, msg
        if isinstance(exc, InvalidSymbolError):  # the --symbol option, not a line of the file
            assert symbol is not None and not is_valid_symbol(symbol)
        else:
            assert isinstance(exc, DataImportError), msg
            # a line, unless the file as a whole cannot be read (corrupt gzip or Parquet)
            assert exc.rule == "unreadable file" or (exc.line or 0) >= 1, msg
        if text is not None and isinstance(exc, DataImportError) and exc.line is not None:
            # the line is the first line of a record (or the header) of the document
            starts, reader = [1], csv.reader(io.StringIO(text, newline=""))
            for _ in reader:
                starts.append(reader.line_num + 1)
            assert exc.line in starts or exc.line <= text.count("\n") + 1, msg
        assert _snapshot(store) == before, msg
    else:
        event("loaded")
        _check_stored_rows(store)
    assert time.monotonic() - t0 < SECONDS_PER_IMPORT


@FUZZ
@given(doc=documents(), skip_bad=st.booleans())
def test_random_csv_documents_load_or_are_refused_cleanly(store, tmp_path, doc, skip_bad):
    kind, symbol, text = doc
    path = tmp_path / f"fuzz{next(_n)}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    _import_once(store, path, kind, symbol, skip_bad, text)


@FUZZ
@given(
    head=st.sampled_from(["", "date,symbol,open,high,low,close,volume\n", "date,symbol,score\n"]),
    body=st.binary(max_size=200),
    suffix=st.sampled_from([".csv", ".csv.gz", ".parquet"]),
    skip_bad=st.booleans(),
)
def test_random_bytes_load_or_are_refused_cleanly(store, tmp_path, head, body, suffix, skip_bad):
    path = tmp_path / f"bytes{next(_n)}{suffix}"
    path.write_bytes(head.encode() + body)
    _import_once(store, path, None, None, skip_bad, None)
