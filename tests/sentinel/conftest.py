"""Shared fixtures for the signal tests: real bars from ../shared/data and seeded random walks."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_SYMBOLS = ("AAPL", "XOM", "UA")  # UA has empty rows, a realistic defect
PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]


@cache
def _real_prices() -> dict[str, pd.DataFrame]:
    raw = pd.read_csv(DATA_DIR / "sp500_5y_prices.csv.gz", parse_dates=["date"])
    raw = raw[raw["symbol"].isin(REAL_SYMBOLS)]
    return {
        symbol: group.set_index("date")[PRICE_COLUMNS].astype(np.float64)
        for symbol, group in raw.groupby("symbol")
    }


@cache
def _spy() -> pd.Series:
    raw = pd.read_csv(DATA_DIR / "benchmarks.csv.gz", parse_dates=["date"])
    spy = raw[raw["symbol"] == "SPY"].set_index("date")["close"].astype(np.float64)
    return spy.loc["2011-01-01":"2017-12-31"]


@pytest.fixture(scope="session")
def real_prices() -> dict[str, pd.DataFrame]:
    """A few real S&P 500 symbols (skips when ../shared/data is absent)."""
    if not (DATA_DIR / "sp500_5y_prices.csv.gz").exists():
        pytest.skip("real data not available (../shared/data)")
    return _real_prices()


@pytest.fixture(scope="session")
def spy() -> pd.Series:
    """SPY closes 2011-2017 (skips when ../shared/data is absent)."""
    if not (DATA_DIR / "benchmarks.csv.gz").exists():
        pytest.skip("real data not available (../shared/data)")
    return _spy()


def random_walk(
    n: int, seed: int, start: str = "2015-01-01", drift: float = 0.0003
) -> pd.DataFrame:
    """A seeded OHLCV random walk on business days (synthetic, for tests only)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n, name="date")
    close = 50.0 * np.exp(np.cumsum(rng.normal(drift, 0.015, n)))
    open_ = close * np.exp(rng.normal(0, 0.004, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    volume = rng.lognormal(13, 0.4, n).round()
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=dates
    )


def random_market(n: int, seed: int, start: str = "2013-06-01") -> pd.Series:
    """A seeded benchmark close series with a few missing days."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n, name="date")
    series = pd.Series(200.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n))), index=dates)
    return series.drop(series.index[rng.choice(n, size=n // 50, replace=False)])


def perturb_after(
    frame: pd.DataFrame | pd.Series, t: pd.Timestamp, seed: int, delete: bool
) -> pd.DataFrame | pd.Series:
    """Delete every row dated after ``t``, or replace all its values with random positive ones."""
    if delete:
        return frame.loc[:t]
    out = frame.copy()
    after = out.index > t
    rng = np.random.default_rng(seed)
    shape = (int(after.sum()),) + out.shape[1:]
    scale = float(np.nanmedian(np.asarray(frame, dtype=np.float64)))
    out.loc[after] = rng.uniform(0.2, 5.0, size=shape) * scale
    return out


@pytest.fixture(scope="session")
def make_walk():
    """:func:`random_walk` as a fixture (test modules do not import conftest)."""
    return random_walk


@pytest.fixture(scope="session")
def make_market():
    """:func:`random_market` as a fixture."""
    return random_market


@pytest.fixture(scope="session")
def perturb():
    """:func:`perturb_after` as a fixture."""
    return perturb_after
