"""Corporate actions (splits, cash dividends) and prices adjusted point in time.

Prices are stored as traded. An action is known on its ex-date, so the bars read as of a day T
are adjusted only with actions dated <= T: a split or dividend announced later cannot reach a
signal. With ``G(t)`` the product of the price factors of the actions dated <= t (a split of r new
shares per old one gives 1/r, a dividend d on a previous close P gives 1 - d/P), the bars as of T
are ``raw(t) * G(T) / G(t)``; ``raw / G`` depends only on actions up to each row's own date, and
the one scale ``G(T)`` only on actions up to T. Volumes scale the other way, by splits only.

The file: ``date, symbol`` and ``dividend`` and/or ``split_coefficient`` (or ``split``), one row
per ex-date (``../shared/data/sp500_av_1999-2017_actions.csv.gz``). Rules, in order:
``unparseable date``, ``date out of range``, ``missing symbol``, ``invalid symbol``,
``non-numeric value``, ``non-finite value``, ``split ratio <= 0``, ``negative dividend``,
``duplicate (symbol, date)``; then, with the store and the prices of the same import:
``unknown symbol`` and ``dividend >= previous close``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sentinel.db.store import Store
from sentinel.errors import DataImportError

SPLIT_COLUMNS = ("split_coefficient", "split")


def validate_actions(
    df: pd.DataFrame, path: Path, *, skip_bad: bool, lines: np.ndarray | None = None
):
    """Check an actions file row by row; empty cells mean no split (1) and no dividend (0)."""
    # lazy: the importer imports this module
    from sentinel.data.importer import (
        FileReport,
        ParsedFile,
        _collect,
        _dates,
        _numbers,
        _require,
        _symbols,
    )

    _require(df, path, ["date", "symbol"])
    split_col = next((c for c in SPLIT_COLUMNS if c in df.columns), None)
    if split_col is None and "dividend" not in df.columns:
        raise DataImportError(str(path), 1, "missing column", "dividend or split_coefficient")
    raw = df[["symbol", "date"]].copy()
    dates, out_of_range = _dates(df["date"])
    sym, no_symbol, bad_symbol = _symbols(df)
    n = len(df)
    none = np.zeros(n, dtype=bool)
    split, split_text = _numbers(df[split_col]) if split_col else (np.ones(n), none)
    div, div_text = _numbers(df["dividend"]) if "dividend" in df else (np.zeros(n), none)
    split = np.where(np.isnan(split), 1.0, split)
    div = np.where(np.isnan(div), 0.0, div)
    frame = pd.DataFrame({"symbol": sym, "split": split, "dividend": div}, index=df.index)
    keys = pd.DataFrame({"s": sym, "d": dates})
    with np.errstate(invalid="ignore"):
        masks = [
            ("unparseable date", dates.isna().to_numpy()),
            ("date out of range", out_of_range),
            ("missing symbol", no_symbol),
            ("invalid symbol", bad_symbol),
            ("non-numeric value", split_text | div_text),
            ("non-finite value", np.isinf(split) | np.isinf(div)),
            ("split ratio <= 0", split <= 0),
            ("negative dividend", div < 0),
            ("duplicate (symbol, date)", keys.duplicated(keep="first").to_numpy()),
        ]
    good, bad = _collect(path, "actions", frame, masks, skip_bad, dates, lines, raw)  # type: ignore[arg-type]
    good = good.sort_values(["symbol", "date"], kind="stable")
    report = FileReport(str(path), "actions", n, len(good), good["symbol"].nunique(), bad)  # type: ignore[arg-type]
    return ParsedFile(report, good)


def _stored_closes(store: Store, symbols: list[str]) -> pd.DataFrame:
    rows: list[tuple] = []
    for i in range(0, len(symbols), 500):
        chunk = symbols[i : i + 500]
        marks = ", ".join(f":s{k}" for k in range(len(chunk)))
        rows += store.db.rows(
            f"SELECT symbol, date, close FROM prices WHERE symbol IN ({marks})",
            **{f"s{k}": s for k, s in enumerate(chunk)},
        )
    out = pd.DataFrame(rows, columns=["symbol", "date", "close"])
    out["date"] = pd.to_datetime(out["date"].astype(str))
    return out


def check_actions(store: Store, parsed, prices: list[pd.DataFrame]) -> pd.DataFrame:
    """Refuse (or with ``--skip-bad`` drop and report) an action for a symbol without prices, or
    a dividend not below the last close; returns the actions to write.

    ``prices`` are the bars of the same import (they win over stored ones on the same day).
    """
    from sentinel.data.importer import LINE, BadRow  # lazy: see validate_actions

    df, path = parsed.frame, parsed.report.path
    if df.empty:
        return df
    symbols = sorted(df["symbol"].unique())
    known = {s.symbol for s in store.market.securities()}
    for p in prices:
        known |= set(p["symbol"].unique())
    parts = [p.loc[p["symbol"].isin(symbols), ["symbol", "date", "close"]] for p in prices]
    closes = pd.concat([*parts, _stored_closes(store, symbols)], ignore_index=True)
    closes = closes.drop_duplicates(["symbol", "date"], keep="first").sort_values("date")
    closes = closes.astype({"symbol": object, "date": "datetime64[ns]", "close": "float64"})
    acts = df.astype({"symbol": object, "date": "datetime64[ns]"}).sort_values("date")
    both = pd.merge_asof(
        acts, closes.rename(columns={"close": "prev_close"}), on="date", by="symbol",
        allow_exact_matches=False,
    ).sort_values(LINE)  # fmt: skip
    unknown = ~both["symbol"].isin(known).to_numpy()
    too_big = ~unknown & (both["dividend"].to_numpy() >= both["prev_close"].to_numpy())
    rules = np.where(unknown, "unknown symbol", np.where(too_big, "dividend >= previous close", ""))
    bad = both.loc[rules != ""].assign(rule=rules[rules != ""])
    if bad.empty:
        return df
    if not parsed.skip_bad:
        row = bad.iloc[0]
        when = f"symbol {row['symbol']}, date {row['date'].date()}: "
        detail = (
            "no prices for it in the store or this import; import its prices first (or in the "
            "same command)"
            if row["rule"] == "unknown symbol"
            else f"dividend {row['dividend']:g} against a close of {row['prev_close']:g} the "
            "session before"
        )
        raise DataImportError(
            path, int(row[LINE]), row["rule"], when + detail + "; fix the row or use --skip-bad"
        )
    parsed.report.bad += [
        BadRow(path, int(r[LINE]), r["rule"], r["symbol"], str(r["date"].date()))
        for _, r in bad.iterrows()
    ]
    parsed.report.rows_valid -= len(bad)
    return df.loc[~df[LINE].isin(bad[LINE])]


def write_actions(store: Store, conn, df: pd.DataFrame) -> None:
    """Upsert validated actions keyed by (symbol, ex-date)."""
    from sentinel.data.importer import _iso  # lazy: see validate_actions

    data = [
        df["symbol"].to_numpy(dtype=object),
        _iso(df["date"], store),
        df["split"].to_numpy("float64").tolist(),
        df["dividend"].to_numpy("float64").tolist(),
    ]
    store.db.upsert_tuples(
        "corporate_actions", ["symbol", "date"], ["symbol", "date", "split", "dividend"],
        list(zip(*data, strict=True)), conn=conn,
    )  # fmt: skip
