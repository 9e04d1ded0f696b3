"""Dated membership files: listings, sector histories and index membership, as intervals.

Each row is a span ``from .. to`` (both inclusive; an empty ``to`` means "still"), so the
universe, a symbol's sector and an index's members can be read as of any day without using what
was only known later. Files:

* listings: ``symbol, from, to[, reason, cash_out]`` — when a symbol traded; a position still held
  after ``to`` is settled at ``cash_out`` (or its last price).
* sector history: ``symbol, sector, from, to``.
* index membership: ``index, symbol, from, to``.

Rules, in order (the first broken one names the file and line): ``missing symbol``,
``invalid symbol``, ``missing index``, ``missing sector``, ``unparseable from``,
``from out of range``, ``unparseable to``, ``to out of range``, ``dates run backwards (to before
from)``, ``non-numeric cash_out``, ``non-positive cash_out``, ``duplicate (key, from)`` and, over
the file together with what is stored, ``overlapping intervals``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sentinel.db.store import Store
from sentinel.errors import DataImportError

#: Interval kinds: their key columns (besides ``from``), required columns and table layout.
SPECS: dict[str, dict] = {
    "listings": {
        "key": ["symbol"],
        "required": ["symbol", "from"],
        "table": "listings",
        "columns": {"symbol": "symbol", "from": "listed_from", "to": "listed_to"},
        "extra": ["reason", "cash_out"],
    },
    "sector_history": {
        "key": ["symbol"],
        "required": ["symbol", "sector", "from"],
        "table": "sector_history",
        "columns": {"symbol": "symbol", "from": "valid_from", "to": "valid_to"},
        "extra": ["sector"],
    },
    "membership": {
        "key": ["index", "symbol"],
        "required": ["index", "symbol", "from"],
        "table": "index_membership",
        "columns": {
            "index": "index_name",
            "symbol": "symbol",
            "from": "valid_from",
            "to": "valid_to",
        },
        "extra": [],
    },
}


def validate_intervals(
    df: pd.DataFrame, path: Path, kind: str, *, skip_bad: bool, lines: np.ndarray | None = None
):
    """Check one interval file row by row (the overlap rule runs at write time, with the store)."""
    # lazy: the importer imports this module's kinds
    from sentinel.data.importer import (
        FileReport,
        ParsedFile,
        _collect,
        _dates,
        _numbers,
        _require,
        _symbols,
    )

    spec = SPECS[kind]
    _require(df, path, spec["required"])
    if "to" not in df.columns:
        df["to"] = pd.NA
    raw = df[["symbol"]].copy()
    raw["date"] = df["from"]
    sym, no_symbol, bad_symbol = _symbols(df)
    df["symbol"] = sym
    masks = [("missing symbol", no_symbol), ("invalid symbol", bad_symbol)]
    for col in ("index", "sector"):
        if col in spec["required"]:
            text = df[col].astype("string").str.strip()
            df[col] = text
            control = text.str.contains(r"[\x00-\x1f\x7f]", regex=True).fillna(False)
            masks.append((f"missing {col}", (text.isna() | (text == "")).to_numpy(bool)))
            masks.append((f"control character in {col}", control.to_numpy(bool)))
    start, start_out = _dates(df["from"])
    end, end_out = _dates(df["to"])
    to_text = df["to"].astype("string").str.strip()
    has_end = (to_text.notna() & (to_text != "")).fillna(False).to_numpy(bool)
    with np.errstate(invalid="ignore"):
        backwards = (has_end & (end < start)).to_numpy(bool)
    masks += [
        ("unparseable from", start.isna().to_numpy(bool)),
        ("from out of range", start_out),
        ("unparseable to", has_end & end.isna().to_numpy(bool)),
        ("to out of range", end_out),
        ("dates run backwards (to before from)", backwards),
    ]
    if "cash_out" in df.columns:
        value, non_numeric = _numbers(df["cash_out"])
        df["cash_out"] = value
        with np.errstate(invalid="ignore"):
            masks.append(("non-numeric cash_out", non_numeric | np.isinf(value)))
            masks.append(("non-positive cash_out", value <= 0))
    keys = pd.DataFrame({k: df[k] for k in spec["key"]}).assign(_f=start)
    masks.append(("duplicate (key, from)", keys.duplicated(keep="first").to_numpy(bool)))
    df["from"], df["to"] = start, end
    good, bad = _collect(path, kind, df, masks, skip_bad, None, lines, raw)  # type: ignore[arg-type]
    report = FileReport(str(path), kind, len(df), len(good), good["symbol"].nunique(), bad)  # type: ignore[arg-type]
    return ParsedFile(report, good)


def _stored(store: Store, kind: str) -> pd.DataFrame:
    spec = SPECS[kind]
    names = list(spec["columns"])  # file names, in table order
    cols = [spec["columns"][n] for n in names]
    rows = store.db.rows(f"SELECT {', '.join(cols)} FROM {spec['table']}")
    out = pd.DataFrame(rows, columns=names)
    for c in ("from", "to"):
        out[c] = pd.to_datetime(out[c].astype("string"), errors="coerce")
    return out


def check_overlaps(store: Store, df: pd.DataFrame, path: str, kind: str) -> None:
    """Refuse intervals that overlap, within the file or with stored ones of the same key.

    A row with the key and ``from`` of a stored one replaces it (re-importing is a no-op).
    """
    from sentinel.data.importer import LINE  # lazy: see validate_intervals

    spec = SPECS[kind]
    keys = spec["key"]
    new = df[[*keys, "from", "to", LINE]].copy()
    old = _stored(store, kind)
    if not old.empty:
        replaced = old.merge(new[[*keys, "from"]], on=[*keys, "from"], how="left", indicator=True)
        old = old.loc[(replaced["_merge"] == "left_only").to_numpy()]
        old[LINE] = -1
    both = pd.concat([new, old], ignore_index=True) if not old.empty else new
    both = both.sort_values([*keys, "from"], kind="stable").reset_index(drop=True)
    far = pd.Timestamp("2262-01-01")
    prev_end = both.groupby(keys, sort=False)["to"].shift(1)
    prev_open = both.groupby(keys, sort=False)["from"].shift(1).notna() & prev_end.isna()
    clash = prev_open | (prev_end.fillna(far - pd.Timedelta(days=1)) >= both["from"])
    clash &= both.groupby(keys, sort=False).cumcount() > 0
    if not clash.any():
        return
    i = int(np.flatnonzero(clash.to_numpy())[0])
    row, before = both.iloc[i], both.iloc[i - 1]
    line = int(row[LINE]) if row[LINE] >= 0 else int(before[LINE])
    what = ", ".join(f"{k} {row[k]}" for k in keys)
    prior = "a stored interval" if before[LINE] < 0 else f"line {int(before[LINE])}"
    end = "open" if pd.isna(before["to"]) else str(before["to"].date())
    raise DataImportError(
        path,
        line,
        "overlapping intervals",
        f"{what}: from {row['from'].date()} starts before {prior} ({before['from'].date()} .. "
        f"{end}) ends; intervals of one key must not overlap",
    )


def write_intervals(store: Store, conn, df: pd.DataFrame, kind: str) -> None:
    """Upsert validated intervals (keyed by key and ``from``)."""
    from sentinel.data.importer import _iso_one  # lazy: see validate_intervals

    spec = SPECS[kind]
    names = [*spec["columns"], *[c for c in spec["extra"] if c in df.columns]]
    cols = [spec["columns"].get(n, n) for n in names]
    rows = []
    for rec in df[names].itertuples(index=False, name=None):
        out: list[object] = []
        for n, v in zip(names, rec, strict=True):
            if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                out.append(None)
            elif n in ("from", "to"):
                out.append(_iso_one(pd.Timestamp(v).date(), store))
            elif n == "cash_out":
                out.append(float(v))
            else:
                out.append(str(v).strip() or None)
        rows.append(tuple(out))
    key_cols = [spec["columns"][k] for k in [*spec["key"], "from"]]
    store.db.upsert_tuples(spec["table"], key_cols, cols, rows, conn=conn)
