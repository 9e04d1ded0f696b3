"""A synthetic, seeded daily market: the demo universe the main job runs on out of the box.

**The data is synthetic.** It is generated, not observed, so nothing learned on it says anything
about real markets; it exists so a newcomer can run every command with no download.

The model, per New York Stock Exchange session *t* (XNYS: the runs' default calendar, so the
demo has no bars on exchange holidays and no data gaps):

* a market regime follows a three-state Markov chain (bear / sideways / bull) with persistent
  states (mean stay of months), each with its own daily drift and volatility;
* the market return is ``mu[regime] + sigma[regime] * e_t`` with Student-t(4) shocks (fat tails);
* each sector adds an AR(1) factor return; each stock has a beta to the market, a sector loading,
  a small persistent alpha that drifts (so some predictability exists at a horizon of weeks),
  and idiosyncratic Student-t noise;
* open/high/low come from the close path with a gap and an intraday range scaled to volatility;
  volume is log-normal around a per-stock level and rises with the size of the move;
* a few symbols list late (IPO) and one leaves the universe (delisted), to exercise
  universe-as-of reads.

The market index (``MARKET``) is the cap-free equal-weight compounding of the market factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sentinel.data.importer import validate_bars, validate_sectors, write_parsed

SECTORS = (
    "Information Technology",
    "Health Care",
    "Financials",
    "Consumer Discretionary",
    "Industrials",
    "Energy",
)
MARKET_SYMBOL = "MARKET"
# Daily drift and volatility per regime: bear, sideways, bull.
_REGIME_MU = np.array([-0.0009, 0.0003, 0.0009])
_REGIME_SIGMA = np.array([0.019, 0.010, 0.008])
_TRANSITION = np.array(
    [
        [0.985, 0.012, 0.003],
        [0.006, 0.986, 0.008],
        [0.002, 0.008, 0.990],
    ]
)


@dataclass(frozen=True)
class DemoUniverse:
    """Long-format frames ready for :func:`sentinel.data.importer.write_parsed`-style loading."""

    prices: pd.DataFrame  # date, symbol, open, high, low, close, volume
    securities: pd.DataFrame  # symbol, name, sector, universe_from, universe_to
    benchmark: pd.DataFrame  # date, symbol, open, high, low, close, volume
    regimes: pd.Series  # the true hidden regime per day (0 bear, 1 sideways, 2 bull)


def _student_t(rng: np.random.Generator, shape: tuple[int, ...], df: float = 4.0) -> np.ndarray:
    """Unit-variance Student-t draws: fat tails without changing the scale."""
    return rng.standard_t(df, size=shape) / np.sqrt(df / (df - 2.0))


def _symbols(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for i in range(n):
        a, b = divmod(i, 26)
        out.append(f"D{letters[a % 26]}{letters[b]}")
    return out


def _ohlcv(
    rng: np.random.Generator, close: np.ndarray, vol: np.ndarray, base_volume: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Open/high/low/volume consistent with a close path: open within the bar, high >= low."""
    prev = np.vstack([close[:1], close[:-1]])
    gap = 1.0 + 0.3 * vol * rng.standard_normal(close.shape)
    open_ = prev * gap
    span = np.abs(rng.standard_normal(close.shape)) * vol * 0.6 + vol * 0.2
    high = np.maximum(open_, close) * (1.0 + span * rng.uniform(0.2, 1.0, close.shape))
    low = np.minimum(open_, close) * (1.0 - span * rng.uniform(0.2, 1.0, close.shape))
    move = np.abs(np.log(close / prev)) / np.maximum(vol, 1e-6)
    volume = base_volume * np.exp(0.35 * rng.standard_normal(close.shape) + 0.25 * move)
    return open_, high, low, np.round(volume)


def _sessions(start: str, end: str) -> pd.DatetimeIndex:
    """The XNYS sessions from ``start`` to ``end`` (exchange_calendars: holidays are known)."""
    import exchange_calendars as xc  # lazy: only demo generation needs it here

    cal = xc.get_calendar("XNYS", start=start, end=end)
    return pd.DatetimeIndex(cal.sessions, name="date")


def generate_demo_universe(
    seed: int = 7,
    n_symbols: int = 50,
    start: str = "2014-01-01",
    end: str = "2023-12-31",
) -> DemoUniverse:
    """Generate the demo market; the same arguments always give the same data."""
    rng = np.random.default_rng(seed)
    dates = _sessions(start, end)
    n_days = len(dates)

    regimes = np.empty(n_days, dtype=np.int64)
    regimes[0] = 2
    for t in range(1, n_days):
        regimes[t] = rng.choice(3, p=_TRANSITION[regimes[t - 1]])
    market = _REGIME_MU[regimes] + _REGIME_SIGMA[regimes] * _student_t(rng, (n_days,))

    n_sec = len(SECTORS)
    sector_ret = np.zeros((n_days, n_sec))
    shocks = 0.006 * _student_t(rng, (n_days, n_sec))
    for t in range(1, n_days):
        sector_ret[t] = 0.05 * sector_ret[t - 1] + shocks[t]

    symbols = _symbols(n_symbols)
    sector_of = np.arange(n_symbols) % n_sec
    beta = rng.uniform(0.6, 1.5, n_symbols)
    loading = rng.uniform(0.5, 1.2, n_symbols)
    idio_sigma = rng.uniform(0.008, 0.02, n_symbols)
    # A slowly drifting alpha (AR(1) with a long memory) gives weeks-horizon predictability.
    alpha = np.zeros((n_days, n_symbols))
    alpha_shock = 0.00004 * rng.standard_normal((n_days, n_symbols))
    for t in range(1, n_days):
        alpha[t] = 0.995 * alpha[t - 1] + alpha_shock[t]
    idio = idio_sigma * _student_t(rng, (n_days, n_symbols))
    rets = alpha + beta * market[:, None] + loading * sector_ret[:, sector_of] + idio
    rets = np.clip(rets, -0.5, 0.5)
    start_price = rng.uniform(20, 200, n_symbols)
    close = start_price * np.exp(np.cumsum(np.log1p(rets), axis=0))
    vol = np.sqrt(beta**2 * _REGIME_SIGMA[regimes][:, None] ** 2 + idio_sigma**2)
    base_volume = rng.uniform(2e5, 5e6, n_symbols)
    open_, high, low, volume = _ohlcv(rng, close, vol, base_volume)

    # Late listings and one delisting exercise universe-as-of reads.
    first = np.zeros(n_symbols, dtype=np.int64)
    last = np.full(n_symbols, n_days - 1, dtype=np.int64)
    for k, i in enumerate(range(n_symbols - 4, n_symbols)):
        first[i] = int(n_days * (0.15 + 0.15 * k))
    if n_symbols > 5:
        last[n_symbols - 5] = int(n_days * 0.7)

    frames = []
    for i, sym in enumerate(symbols):
        sl = slice(first[i], last[i] + 1)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates[sl],
                    "symbol": sym,
                    "open": np.round(open_[sl, i], 4),
                    "high": np.round(high[sl, i], 4),
                    "low": np.round(low[sl, i], 4),
                    "close": np.round(close[sl, i], 4),
                    "volume": volume[sl, i],
                }
            )
        )
    prices = pd.concat(frames, ignore_index=True)
    # Rounding can push open/close a hair outside [low, high]: widen the bar, never the close.
    prices["high"] = prices[["high", "open", "close"]].max(axis=1)
    prices["low"] = prices[["low", "open", "close"]].min(axis=1)

    securities = pd.DataFrame(
        {
            "symbol": symbols,
            "name": [f"Demo {SECTORS[s].split()[0]} {sym}" for sym, s in zip(symbols, sector_of)],  # noqa: B905
            "sector": [SECTORS[s] for s in sector_of],
            "universe_from": [dates[f] for f in first],
            "universe_to": [dates[la] if la < n_days - 1 else pd.NaT for la in last],
        }
    )
    level = 1000.0 * np.exp(np.cumsum(np.log1p(market)))
    mopen, mhigh, mlow, mvol = _ohlcv(
        rng, level[:, None], _REGIME_SIGMA[regimes][:, None], np.array([1e9])
    )
    benchmark = pd.DataFrame(
        {
            "date": dates,
            "symbol": MARKET_SYMBOL,
            "open": mopen[:, 0],
            "high": np.maximum(mhigh[:, 0], np.maximum(mopen[:, 0], level)),
            "low": np.minimum(mlow[:, 0], np.minimum(mopen[:, 0], level)),
            "close": level,
            "volume": mvol[:, 0],
        }
    )
    return DemoUniverse(prices, securities, benchmark, pd.Series(regimes, index=dates))


def install_demo(store, universe: DemoUniverse | None = None) -> dict[str, int]:
    """Validate and write the demo universe into ``store`` in one transaction (idempotent)."""
    u = universe or generate_demo_universe()
    src = Path("<demo>")
    parsed = [
        validate_bars(u.prices.assign(date=u.prices["date"].dt.strftime("%Y-%m-%d")), src,
                      skip_bad=False),
        validate_bars(u.benchmark.assign(date=u.benchmark["date"].dt.strftime("%Y-%m-%d")), src,
                      skip_bad=False, kind="benchmark"),
        validate_sectors(u.securities.copy(), src, skip_bad=False),
    ]  # fmt: skip
    write_parsed(store, parsed, replace=True)  # a new seed replaces the synthetic market on purpose
    return {"prices": len(u.prices), "benchmark": len(u.benchmark), "symbols": len(u.securities)}
