"""Daily bars from Yahoo Finance through the optional ``yfinance`` package.

The provider only turns what ``yfinance.download`` returns into the importer's price format
(``date,symbol,open,high,low,close,volume,adj_close``); the importer then validates every row as
it would a user's file, so Yahoo data gets no shortcut past the import rules.

Failures are one line: the package missing names the extra to install
(``pip install 'sentinel[yfinance]'``); a download that raises or returns nothing says whether
Yahoo could be reached at all.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentinel.errors import SentinelError

INSTALL_HINT = "pip install 'sentinel[yfinance]'"
YAHOO_HOST = "query1.finance.yahoo.com"
COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume", "adj_close"]
_FIELDS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}

Download = Callable[..., pd.DataFrame]


class ProviderError(SentinelError):
    """A data provider cannot deliver: package missing, offline, or nothing returned."""


def load_download() -> Download:
    """``yfinance.download``, or a one-line error naming the extra to install."""
    try:
        import yfinance  # noqa: PLC0415 - optional extra, imported only when used
    except ImportError:
        raise ProviderError(
            f"the yfinance provider needs the optional package: {INSTALL_HINT}"
        ) from None
    return yfinance.download


def yahoo_symbol(symbol: str) -> str:
    """Yahoo writes share classes with a dash: ``BRK.B`` is ``BRK-B``."""
    return symbol.replace(".", "-")


def _reachable(host: str = YAHOO_HOST, timeout: float = 5.0) -> str | None:
    """None when ``host`` answers on 443, else the reason it does not."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return None


def _by_field(frame: pd.DataFrame, tickers: list[str]) -> dict[str, pd.DataFrame]:
    """ticker -> frame with columns Open, High, ... from any of yfinance's column layouts."""
    cols = frame.columns
    if not isinstance(cols, pd.MultiIndex):  # one ticker, flat columns (older yfinance)
        if len(tickers) != 1:
            raise ProviderError(
                f"yfinance returned flat columns for {len(tickers)} tickers; expected one per field"
            )
        return {tickers[0]: frame}
    field_level = next(
        (i for i in range(cols.nlevels) if "Close" in set(cols.get_level_values(i))), None
    )
    if field_level is None:
        raise ProviderError(f"yfinance frame has no 'Close' column (columns: {list(cols)[:6]})")
    ticker_level = 1 - field_level if cols.nlevels == 2 else None
    if ticker_level is None:
        raise ProviderError(f"yfinance frame has {cols.nlevels} column levels; expected 2")
    out = {}
    for ticker in dict.fromkeys(cols.get_level_values(ticker_level)):
        out[str(ticker)] = frame.xs(ticker, axis=1, level=ticker_level)
    return out


def bars_from_download(frame: pd.DataFrame, symbols: dict[str, str]) -> pd.DataFrame:
    """The importer's price rows from a ``yfinance.download`` frame.

    ``symbols`` maps Yahoo tickers to the store's symbols. Days a ticker did not trade (all fields
    NaN, which yfinance writes when another ticker traded that day) are dropped; anything else is
    passed on for the importer to judge.
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:  # a daily bar's day is the exchange's local date
        index = index.tz_localize(None)
    days = [d.date().isoformat() for d in index]
    parts = []
    for ticker, sub in _by_field(frame, list(symbols)).items():
        if ticker not in symbols:
            continue
        missing = {"Open", "High", "Low", "Close", "Volume"} - set(sub.columns)
        if missing:
            raise ProviderError(f"yfinance frame for {ticker} lacks {sorted(missing)}")
        part = pd.DataFrame({"date": days, "symbol": symbols[ticker]})
        for source, target in _FIELDS.items():
            part[target] = sub[source].to_numpy() if source in sub else np.nan
        fields = part[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
        parts.append(part[~np.isnan(fields).all(axis=1)])
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(parts, ignore_index=True)[COLUMNS]
    if out["adj_close"].isna().all():  # auto_adjust=True frames have none: not a bad value
        out = out.drop(columns="adj_close")
    return out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)


def fetch_bars(
    symbols: Iterable[str],
    start: date,
    end: date,
    *,
    download: Download | None = None,
    reachable: Callable[[], str | None] = _reachable,
) -> pd.DataFrame:
    """Daily bars of ``symbols`` from ``start`` to ``end`` (inclusive) in the importer's format.

    ``download`` defaults to ``yfinance.download`` (tests pass a fake with its signature).
    """
    wanted = {yahoo_symbol(s): s for s in symbols}
    if not wanted:
        return pd.DataFrame(columns=COLUMNS)
    download = download or load_download()
    kwargs: dict[str, Any] = {
        "start": start.isoformat(),
        "end": (end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
        "auto_adjust": False,
        "actions": False,
        "progress": False,
        "group_by": "column",
        "threads": False,
    }
    try:
        frame = download(list(wanted), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure of the third-party call: one line
        why = reachable()
        hint = f"offline or {YAHOO_HOST} unreachable ({why})" if why else "check the symbols"
        raise ProviderError(
            f"yfinance download failed ({type(exc).__name__}: {exc}); {hint}"
        ) from None
    bars = bars_from_download(frame, wanted)
    if bars.empty:
        why = reachable()
        if why:
            raise ProviderError(
                f"yfinance returned no bars: offline or {YAHOO_HOST} unreachable ({why})"
            )
        shown = ", ".join(list(wanted)[:5]) + (" ..." if len(wanted) > 5 else "")
        raise ProviderError(f"yfinance returned no bars for {shown} from {start} to {end}")
    return bars


def write_bars_csv(bars: pd.DataFrame, path: Path) -> Path:
    """Write provider bars as an importer CSV (the format ``sentinel data import`` reads)."""
    bars.to_csv(path, index=False, float_format="%.10g")
    return path
