"""Example data source (docs/guides/add_a_data_source.md): Stooq daily ASCII files -> the store.

Stooq (stooq.com) serves daily bars as one text file per ticker, e.g. ``aapl.us.txt``::

    <TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>
    AAPL.US,D,20170103,000000,115.8,116.33,114.76,116.15,28781865,0

A data source only has to produce the importer's long format
(``date,symbol,open,high,low,close,volume``): the importer then checks every row (dates, symbol
rule, prices, high >= low, duplicates ...) and writes everything in one transaction or nothing.

Usage::

    python examples/data_source/stooq_source.py OUT.csv FILE.txt [FILE.txt ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

from sentinel.data.importer import FileReport, import_files
from sentinel.db import Store
from sentinel.errors import SentinelError

STOOQ_COLUMNS = ["<TICKER>", "<PER>", "<DATE>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>"]
IMPORTER_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]


def read_stooq(path: Path) -> pd.DataFrame:
    """One Stooq file as importer rows: ``AAPL.US`` -> ``AAPL``, ``20170103`` -> ``2017-01-03``.

    Values are passed on as text: judging them is the importer's job (it names the line of the
    converted file and the broken rule).
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in STOOQ_COLUMNS if c not in raw.columns]
    if missing:
        raise SentinelError(f"{path}: not a Stooq file (missing columns {', '.join(missing)})")
    weekly = raw["<PER>"] != "D"
    if weekly.any():
        line = int(weekly.to_numpy().argmax()) + 2  # +1 for the header, +1 to count from 1
        raise SentinelError(
            f"{path}, line {line}: not a daily bar (<PER> {raw['<PER>'][line - 2]!r})"
        )
    day = raw["<DATE>"].str.strip()
    return pd.DataFrame(
        {
            "date": day.str[:4] + "-" + day.str[4:6] + "-" + day.str[6:8],
            "symbol": raw["<TICKER>"].str.strip().str.upper().str.rsplit(".", n=1).str[0],
            "open": raw["<OPEN>"],
            "high": raw["<HIGH>"],
            "low": raw["<LOW>"],
            "close": raw["<CLOSE>"],
            "volume": raw["<VOL>"],
        }
    )


def to_importer_csv(paths: list[Path], out: Path) -> Path:
    """Convert Stooq files into one importer CSV (what ``sentinel data import`` reads)."""
    frames = [read_stooq(Path(p)) for p in paths]
    pd.concat(frames, ignore_index=True)[IMPORTER_COLUMNS].to_csv(out, index=False)
    return out


def import_stooq(store: Store, paths: list[Path]) -> list[FileReport]:
    """Convert and import in one go, through the importer API (all rows or none)."""
    with tempfile.TemporaryDirectory() as tmp:
        csv = to_importer_csv(paths, Path(tmp) / "stooq.csv")
        return import_files(store, [csv], kind="prices")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("Usage::")[1].strip(), file=sys.stderr)
        return 2
    try:
        out = to_importer_csv([Path(p) for p in argv[1:]], Path(argv[0]))
    except (SentinelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line, no traceback
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
