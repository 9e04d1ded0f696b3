"""Signal workloads: feature matrices, as-of features and wavelet scores, the regime backfill.

Files are read with pandas directly (the store is not what is measured), except for the regime
backfill, which is a store-to-store job. Each workload times a bare reference in the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench._harness import Result, median_time, shared, timed, workload

BARS = ["open", "high", "low", "close", "volume"]
AS_OF_SYMBOLS = 500


def _read(name: str, adjust: bool = False) -> dict[str, pd.DataFrame]:
    """Bars per symbol (date-indexed, complete rows only); ``adjust`` scales OHLC to adj_close."""
    raw = pd.read_csv(shared(name), parse_dates=["date"])
    raw = raw.dropna(subset=["close"]).drop_duplicates(["symbol", "date"], keep="last")
    if adjust:
        k = raw["adj_close"] / raw["close"]
        for col in ("open", "high", "low", "close"):
            raw[col] = raw[col] * k
    return {
        s: g.set_index("date")[BARS]
        for s, g in raw.sort_values(["symbol", "date"]).groupby("symbol")
    }


def _spy() -> pd.Series | None:
    try:
        raw = pd.read_csv(shared("benchmarks.csv.gz"), parse_dates=["date"])
    except Exception:  # noqa: BLE001 - the market features then take their defaults
        return None
    return raw[raw["symbol"] == "SPY"].set_index("date")["close"]


def _ta_four(bars: pd.DataFrame) -> None:
    """Reference: ``ta``'s RSI, MACD, Bollinger %B and ATR over the whole history."""
    import ta

    close = bars["close"]
    ta.momentum.RSIIndicator(close, window=14).rsi()
    ta.trend.MACD(close).macd()
    ta.volatility.BollingerBands(close).bollinger_pband()
    ta.volatility.AverageTrueRange(bars["high"], bars["low"], close, window=14).average_true_range()


def _features_file(name: str, target: float | None, adjust: bool) -> list[Result]:
    from sentinel.ml_features import compute_feature_matrix

    data = _read(name, adjust)
    market = _spy()
    rows = sum(len(b) for b in data.values())
    secs = timed(lambda: [compute_feature_matrix(b, market) for b in data.values()])
    ref = timed(lambda: [_ta_four(b) for b in data.values()])
    return [
        Result(f"features {name}", "whole-history matrices, all symbols", secs, "s", target, ref,
               f"{len(data)} symbols, {rows:,} rows, 20 features + SPY market features; "
               "reference: ta's RSI+MACD+Bollinger+ATR (4 of the 20) on the same bars"),
    ]  # fmt: skip


@workload("features")
def features() -> list[Result]:
    """Whole-history feature matrices of every symbol: 5y file (< 30 s), 18y file reported."""
    out = _features_file("sp500_5y_prices.csv.gz", 30.0, adjust=False)
    try:
        out += _features_file("sp500_av_1999-2017_prices.csv.gz", None, adjust=True)
    except Exception as exc:  # noqa: BLE001 - the 18y file is optional
        out.append(Result("features 18y", "skipped", 0.0, "s", notes=str(exc)))
    return out


def _five_hundred(data: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], int]:
    """500 symbols from the 366 of the 5y file: the first 134 are reused under a new name."""
    out = dict(data)
    real = len(out)
    for sym in list(data)[: max(0, AS_OF_SYMBOLS - real)]:
        out[f"{sym}.2"] = data[sym]
    return out, real


def _as_of_dates(data: dict[str, pd.DataFrame], n: int) -> list[pd.Timestamp]:
    days = sorted(set().union(*(b.index for b in data.values())))
    rng = np.random.default_rng(0)
    return [pd.Timestamp(days[int(i)]) for i in rng.integers(300, len(days), n)]


@workload("features_asof")
def features_asof() -> list[Result]:
    """Features of 500 symbols as of one date (one stacked pass); target < 0.5 s."""
    from sentinel.ml_features import features_as_of, features_panel_as_of

    data, real = _five_hundred(_read("sp500_5y_prices.csv.gz"))
    market = _spy()
    days = iter(_as_of_dates(data, 40))
    secs = median_time(lambda: features_panel_as_of(data, next(days), market), repeat=15)
    some = dict(list(data.items())[:50])
    days2 = iter(_as_of_dates(data, 40))
    loop = median_time(
        lambda: [features_as_of(b, d, market) for d in [next(days2)] for b in some.values()],
        repeat=5,
    ) * (len(data) / len(some))
    return [
        Result("features_asof", f"{len(data)} symbols as of one date (median)", secs, "s", 0.5,
               loop, f"{real} real symbols + {len(data) - real} reused under new names; reference: "
               "features_as_of one symbol at a time (50 timed, scaled to 500)"),
    ]  # fmt: skip


@workload("wavelet_asof")
def wavelet_asof() -> list[Result]:
    """Wavelet scores of 500 symbols as of one date; target < 0.5 s; reference: pywt per symbol."""
    import pywt

    from sentinel.wavelet import WINDOW, wavelet_scores_panel

    data, real = _five_hundred(_read("sp500_5y_prices.csv.gz"))
    closes = pd.DataFrame({s: b["close"] for s, b in data.items()})
    days = iter(_as_of_dates(data, 40))
    secs = median_time(lambda: wavelet_scores_panel(closes, next(days)), repeat=15)
    days2 = iter(_as_of_dates(data, 40))

    def bare() -> None:
        end = closes.index.searchsorted(next(days2), side="right")
        tail = closes.iloc[max(0, end - WINDOW) : end].to_numpy().T
        for row in tail:
            ok = row[np.isfinite(row)]
            if ok.size == WINDOW:
                pywt.wavedec(np.log(ok), "haar", level=4)

    ref = median_time(bare, repeat=15)
    return [
        Result("wavelet_asof", f"{len(data)} symbols as of one date (median)", secs * 1e3, "ms",
               500.0, ref * 1e3, f"{real} real symbols + {len(data) - real} reused; reference: "
               "one pywt.wavedec per symbol window (decomposition only, no score)"),
    ]  # fmt: skip


@workload("regime_backfill")
def regime_backfill() -> list[Result]:
    """Regime backfill of 20 symbols of the 5y file (2 workers), extrapolated to 500."""
    from threadpoolctl import threadpool_limits

    from sentinel.data.importer import import_files
    from sentinel.db import Store
    from sentinel.regime import RegimeDetector
    from sentinel.regime_backfill import backfill_regime_states

    n = 20
    path = shared("sp500_5y_prices.csv.gz")
    raw = pd.read_csv(path)
    symbols = sorted(raw["symbol"].unique())[:: max(1, raw["symbol"].nunique() // n)][:n]
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "subset.csv"
        raw[raw["symbol"].isin(symbols)].to_csv(subset, index=False)
        stores = [Store(f"sqlite:///{Path(tmp) / f'b{i}.db'}") for i in (1, 2)]
        for store in stores:
            import_files(store, [subset], skip_bad=True)
        t = time.perf_counter()
        report = backfill_regime_states(stores[0], workers=2)
        two = time.perf_counter() - t
        one = timed(lambda: backfill_regime_states(stores[1], workers=1))
        rows = stores[0].db.count("regime_states")
        # Reference: the one-date API, one call per date of one symbol (models cached per month).
        detector = RegimeDetector(stores[1].market)
        days = [d.isoformat() for d in sorted(stores[1].signals.existing_regime_dates(symbols[0]))]
        with threadpool_limits(limits=1):
            naive = timed(lambda: [detector.detect_regime_as_of(symbols[0], d) for d in days])
        for store in stores:
            store.engine.dispose()
    per_symbol = two / n
    minutes = per_symbol * 500 / 60
    return [
        Result("regime_backfill", f"{n} symbols x 5 years, 2 workers", two, "s", None, one,
               f"{rows:,} rows, {len(report.failures)} failures; reference: the same backfill "
               f"with 1 worker (in-process). Extrapolated to 500 symbols: {minutes:.1f} minutes "
               f"with 2 workers ({one / n * 500 / 60:.1f} with 1): minutes, not hours. "
               "18-year histories fit ~5x more monthly models per symbol."),
        Result("regime_backfill", "per symbol (2 workers)", per_symbol, "s", None,
               naive, f"reference: detect_regime_as_of once per date for {len(days)} dates of "
               f"{symbols[0]} (models cached, one store read + filter per date)"),
    ]  # fmt: skip
