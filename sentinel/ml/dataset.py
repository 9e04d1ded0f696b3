"""Feature matrices for many symbols, and the training samples built from them.

:class:`FeatureBook` computes each symbol's whole-history feature matrix once (the causal rolling
path of :mod:`sentinel.ml_features`, proved equal to the one-date computation) and serves rows as
of a date. Each row is stamped with the date it became known, and when the store is a simulation
view a request past its date raises :class:`~sentinel.errors.LookAheadError`: the book is a cache,
not a way around the point-in-time rule.

Training samples (one per symbol and ISO week, on the week's last trading day T): the 20 features
as of T, and the label = close of the last trading day on or before T + horizon (calendar days) /
close at T - 1. ``label_known_at`` is that last trading day: walk-forward training as of D uses only
samples with ``label_known_at <= D``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta

import numpy as np
import pandas as pd

from sentinel.db import Store
from sentinel.errors import LookAheadError
from sentinel.feature_registry import is_default, select_features
from sentinel.ml_features import (
    FEATURE_NAMES,
    compute_feature_matrix,
    market_feature_frame,
    sector_relative_strength_series,
)
from sentinel.timeutil import to_date

#: Rows a symbol needs before its first sample (return_60d needs 60 bars).
MIN_HISTORY = 60
#: Longer than this without a bar (suspension, pre-listing quotes) and returns across it are junk.
MAX_GAP_DAYS = 10
#: Bars checked for gaps before T: the longest window a feature may use (FEATURE_WINDOW).
GAP_LOOKBACK = 252
#: Trailing bars checked for trading: more than half of them at zero volume means "not traded".
VOLUME_LOOKBACK = 20
#: The bar columns a sample is made from (the book keeps only these of each symbol's bars).
SAMPLE_COLUMNS = ("close", "volume")


def _sectors_by_date(
    full: Store, closes: pd.DataFrame, static: dict[str, str | None]
) -> pd.DataFrame | None:
    """date x symbol: the sector in force on each date (a sector history span there, else the
    static sector), as :meth:`MarketView.sectors_as_of` reads it; None without a sector history
    (the default path keeps the static map and its values)."""
    rows = full.db.rows("SELECT symbol, sector, valid_from, valid_to FROM sector_history")
    if not rows:
        return None
    dates = pd.DatetimeIndex(closes.index)
    out = pd.DataFrame({sym: [static.get(sym)] * len(dates) for sym in closes.columns},
                       index=dates, columns=closes.columns, dtype=object)  # fmt: skip
    for sym, sector, start, end in rows:
        if sym not in out.columns:
            continue
        on = dates >= pd.Timestamp(to_date(start))
        if end is not None:
            on &= dates <= pd.Timestamp(to_date(end))
        out.loc[on, sym] = sector
    return out


class FeatureBook:
    """Whole-history features per symbol, served as of the day of a store view.

    Built once from the unbounded data, because computing every row once is the fast path; every
    read takes the caller's view and returns only rows dated on or before ``view.day``, so the book
    is a cache, not a way around the point-in-time rule. Asking for a date past the view's day
    raises :class:`~sentinel.errors.LookAheadError`; only an unbounded view (``store.view(None)``,
    e.g. sample generation outside any simulation) sees the whole history.
    """

    def __init__(
        self,
        store: Store,
        symbols: Iterable[str] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        features: Iterable[str] | None = None,
        market: str | None = None,
    ):
        #: The columns served (default: the 20 built-ins); see :mod:`sentinel.feature_registry`.
        self.feature_names = list(features) if features is not None else list(FEATURE_NAMES)
        full = store.view(None)
        panel = full.market.get_price_panel(list(symbols) if symbols is not None else None)
        self.symbols = sorted(panel["symbol"].unique())
        # "the market" of the market features: the run's benchmark key when stored (else SPY...)
        market_sym = full.market.market_symbol(market)
        self.market_symbol = market_sym
        bench = full.market.get_benchmark(market_sym) if market_sym else None
        self.market = None if bench is None or bench.empty else bench["close"]
        closes = panel.pivot(index="date", columns="symbol", values="close")
        sectors: dict[str, str | None] | pd.DataFrame
        sectors = {s.symbol: s.sector for s in full.market.securities()}
        dated = _sectors_by_date(full, closes, sectors)
        if dated is not None:  # a sector history: each day reads the sector in force that day
            sectors = dated
        self.sector_strength = (
            sector_relative_strength_series(closes, sectors, self.market)
            if self.market is not None
            else None
        )
        self._frames: dict[str, pd.DataFrame] = {}
        self._prices: dict[str, pd.DataFrame] = {}
        self._served: dict[str, pd.DataFrame] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}  # see _served_arrays
        market_frame = market_feature_frame(self.market) if self.market is not None else None
        for i, (sym, g) in enumerate(panel.groupby("symbol", sort=True)):
            prices = g.set_index("date")[["open", "high", "low", "close", "volume"]]
            # the samples read only closes and volumes: not the whole bars all run (~15 MB at 500)
            self._prices[sym] = prices[list(SAMPLE_COLUMNS)].copy()
            sentiment = full.market.get_sentiment(sym)
            strength = (
                self.sector_strength[sym]
                if self.sector_strength is not None and sym in self.sector_strength
                else None
            )
            self._frames[sym] = compute_feature_matrix(
                prices,
                market=self.market,
                sector_strength=strength,
                sentiment=sentiment if not sentiment.empty else None,
                market_features=market_frame,  # the benchmark's rows once, not once per symbol
            )
            # The stored samples keep the 20 defaults; predictions and training read these.
            self._served[sym] = select_features(self._frames[sym], prices, self.feature_names)
            if progress:
                progress(i + 1, len(self.symbols))

    @staticmethod
    def _upto(frame: pd.DataFrame, view: Store) -> pd.DataFrame:
        if view.day is None:
            return frame
        return frame.iloc[: frame.index.searchsorted(pd.Timestamp(view.day), side="right")]

    def matrix(self, symbol: str, view: Store) -> pd.DataFrame:
        """The feature matrix of ``symbol`` up to the view's day."""
        return self._upto(self._frames[symbol], view)

    def prices(self, symbol: str, view: Store) -> pd.DataFrame:
        """The closes and volumes (:data:`SAMPLE_COLUMNS`, what :func:`sample_rows` reads) of the
        bars the features were computed from, up to the view's day."""
        return self._upto(self._prices[symbol], view)

    def panel_as_of(
        self, symbols: Iterable[str], view: Store, as_of: date | None = None
    ) -> pd.DataFrame:
        """symbol x feature_names as of ``as_of`` (default: the view's day) for the symbols with a
        bar by then; a date past the view's day raises :class:`LookAheadError`."""
        d = as_of or view.day
        if d is None:
            raise ValueError("panel_as_of needs a date: an unbounded view has no 'now'")
        if view.day is not None and d > view.day:
            raise LookAheadError("features", None, view.day, d)
        when = pd.Timestamp(d).to_datetime64()
        rows = {}
        for s in symbols:
            served = self._served_arrays(s)
            if served is None:
                continue
            dates, matrix = served
            i = dates.searchsorted(when, side="right") - 1
            if i >= 0:
                rows[s] = matrix[i]
        if not rows or any(r.dtype != np.float64 for r in rows.values()):
            return pd.DataFrame.from_dict(rows, orient="index", columns=self.feature_names)
        # the frame from_dict(orient="index") makes, in a third of its time (every rebalance)
        return pd.DataFrame(np.vstack(list(rows.values())), index=list(rows),
                            columns=self.feature_names)  # fmt: skip

    def _served_arrays(self, symbol: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A symbol's served dates and rows as numpy arrays, made on first use: every rebalance
        day reads one row per symbol, and a pandas row lookup cost more than the prediction.
        The rows equal ``frame.iloc[i].to_numpy()`` (one dtype for the whole row)."""
        if symbol not in self._arrays:
            frame = self._served.get(symbol)
            self._arrays[symbol] = (
                None
                if frame is None
                else (pd.DatetimeIndex(frame.index).to_numpy(), frame.to_numpy())
            )
        return self._arrays[symbol]

    def with_book_features(self, samples: pd.DataFrame, view: Store) -> pd.DataFrame:
        """``samples`` with their features taken from this book (its ``feature_names``).

        Stored samples hold the 20 defaults; a run with other features reads each sample's row
        (symbol, date) from the book, through ``view``: no row past the view's day is read, and a
        sample without that row is dropped.
        """
        if is_default(self.feature_names) or samples.empty:
            return samples
        out = []
        for sym, g in samples.groupby("symbol", sort=False):
            frame = self._served.get(str(sym))
            if frame is None:
                continue
            frame = self._upto(frame, view)
            at = frame.index.get_indexer(pd.DatetimeIndex(g["date"]))  # -1: not a bar by then
            keep = at >= 0
            g = g[keep].copy()
            g["features"] = list(frame.to_numpy()[at[keep]])
            out.append(g)
        return pd.concat(out) if out else samples.iloc[:0]


def _positions(index: pd.Index, targets: pd.DatetimeIndex) -> np.ndarray:
    """``index.get_indexer(targets)`` (-1: absent), by binary search on a sorted unique index:
    ``get_indexer`` builds a hash table on the index and keeps it with the index, ~33 KB a
    symbol's history, 33 MB over a 500-symbol run's prices and features."""
    if not (index.is_monotonic_increasing and index.is_unique):
        return index.get_indexer(targets)
    keys, want = index.to_numpy(), targets.to_numpy()
    pos = np.searchsorted(keys, want)
    found = pos < len(keys)
    found[found] = keys[pos[found]] == want[found]
    return np.where(found, pos, -1)


def sample_rows(
    symbol: str,
    prices: pd.DataFrame,
    features: pd.DataFrame,
    horizon_days: int,
    since: date | None = None,
) -> list[dict]:
    """Training samples of one symbol (see the module docstring for the definition).

    A sample is skipped when its bars cannot be trusted: a gap of more than ``MAX_GAP_DAYS``
    between bars anywhere from ``GAP_LOOKBACK`` bars before T to the label's close (e.g. BHF in
    the 5-year S&P file: sparse sub-cent quotes years before its 2017 listing, whose "returns"
    across the gap reach +500 %), or mostly zero volume in the last ``VOLUME_LOOKBACK`` bars.
    """
    closes = prices["close"].astype("float64")
    ok = np.isfinite(closes) & (closes > 0)
    closes = closes[ok]
    if len(closes) <= MIN_HISTORY:
        return []
    idx = closes.index
    gap = np.diff(idx.to_numpy().astype("datetime64[D]")).astype(np.int64) > MAX_GAP_DAYS
    gaps_before = np.concatenate([[0], np.cumsum(gap)])  # gaps_before[i]: gaps up to bar i
    volume = prices["volume"].astype("float64")[ok] if "volume" in prices else None
    untraded = (
        np.concatenate([[0], np.cumsum(~(volume.to_numpy() > 0))]) if volume is not None else None
    )
    last_day = idx[-1]
    weeks = pd.Series(idx, index=idx).groupby([idx.isocalendar().year, idx.isocalendar().week])
    anchors = pd.DatetimeIndex(weeks.max().sort_values().to_numpy())
    # Every anchor's rules at once (a loop over anchors with pandas scalar lookups cost 34-41 ms
    # a symbol of 5 years; the rows, their order and their numbers are the loop's: tested)
    pos = _positions(idx, anchors)  # each week's last bar is a bar of idx
    horizon_end = anchors + pd.Timedelta(days=horizon_days)
    j = idx.searchsorted(horizon_end, side="right") - 1
    keep = (pos >= MIN_HISTORY) & (horizon_end <= last_day) & (j > pos)
    if since is not None:
        keep &= anchors >= pd.Timestamp(since)
    keep &= gaps_before[j] - gaps_before[np.maximum(0, pos - GAP_LOOKBACK)] == 0
    if untraded is not None:
        lo = np.maximum(0, pos + 1 - VOLUME_LOOKBACK)
        keep &= ~(2 * (untraded[pos + 1] - untraded[lo]) > pos + 1 - lo)
    c = closes.to_numpy()
    label = c[j] / c[pos] - 1.0
    at = _positions(features.index, anchors)
    if (at[keep] < 0).any():
        raise KeyError(anchors[keep][at[keep] < 0][0])  # as features.loc[t] raised
    feats = features.to_numpy(dtype="float64")[np.where(at < 0, 0, at)]
    keep &= np.isfinite(label) & np.isfinite(feats).all(axis=1)
    return [
        {
            "symbol": symbol,
            "date": anchors[k].date(),
            "horizon_days": horizon_days,
            "features": feats[k].tolist(),
            "label": float(label[k]),
            "label_known_at": idx[j[k]].date(),
        }
        for k in np.flatnonzero(keep)
    ]


def generate_samples(
    store: Store,
    symbols: Iterable[str] | None = None,
    *,
    horizon_days: int = 14,
    incremental_days: int | None = None,
    book: FeatureBook | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write training samples for ``symbols`` (default: all); returns rows written per symbol.

    Full mode (default) writes every sample; incremental mode only those dated within the last
    ``incremental_days`` before each symbol's last bar (the weekly job uses 90). Idempotent:
    samples are upserted by (symbol, date, horizon).
    """
    book = book or FeatureBook(store, symbols)
    wanted = book.symbols if symbols is None else [s for s in symbols if s in book.symbols]
    written: dict[str, int] = {}
    for i, sym in enumerate(wanted):
        prices = book.prices(sym, store)  # a bounded store gets the samples known by its day
        since = None
        if incremental_days is not None and len(prices):
            since = (prices.index[-1] - timedelta(days=incremental_days + horizon_days)).date()
        rows = sample_rows(sym, prices, book.matrix(sym, store), horizon_days, since)
        written[sym] = store.signals.upsert_training_samples(rows)
        if progress:
            progress(i + 1, len(wanted))
    return written


def samples_to_arrays(
    samples: pd.DataFrame,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``symbol -> (X, y, dates)`` from :meth:`SignalRepository.get_training_samples` output."""
    out = {}
    for sym, g in samples.groupby("symbol", sort=True):
        X = np.array(g["features"].tolist(), dtype="float64")
        y = g["label"].to_numpy(dtype="float64")
        d = g["date"].to_numpy(dtype="datetime64[D]")
        out[str(sym)] = (X, y, d)
    return out


def relabel_from_next_open(samples: pd.DataFrame, panel: pd.DataFrame) -> pd.DataFrame:
    """Samples whose label starts at the next bar's open instead of T's close (``ml.label_from:
    next_open``): close at ``label_known_at`` / open of the first bar after T - 1, what an order
    decided at T's close and filled at the next open can earn. ``panel`` holds the bars (long
    form, as :meth:`MarketRepository.get_price_panel` returns them) up to the training day;
    a sample without such a bar, or with a non-positive open, is dropped.
    """
    if samples.empty:
        return samples
    parts = []
    for sym, g in samples.groupby("symbol", sort=False):
        bars = panel[panel["symbol"] == sym]
        idx = pd.DatetimeIndex(pd.to_datetime(bars["date"]))
        order = np.argsort(idx.values, kind="stable")
        idx = idx[order]
        opens = bars["open"].to_numpy(dtype="float64")[order]
        closes = pd.Series(bars["close"].to_numpy(dtype="float64")[order], index=idx)
        pos = idx.searchsorted(pd.DatetimeIndex(g["date"]), side="right")  # first bar after T
        ok = pos < len(idx)
        safe = np.where(ok, pos, 0)
        first = np.where(ok, opens[safe] if len(opens) else np.nan, np.nan)
        when = idx.values[safe] if len(idx) else np.full(len(g), np.datetime64("NaT"))
        end = closes.reindex(pd.DatetimeIndex(g["label_known_at"])).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            label = end / first - 1.0
        keep = ok & (first > 0) & np.isfinite(label) & (when <= g["label_known_at"].to_numpy())
        parts.append(g[keep].assign(label=label[keep]))
    return pd.concat(parts) if parts else samples.iloc[:0]
