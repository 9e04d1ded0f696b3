"""Tear-sheet statistics: benchmark-relative and rolling figures from empyrical-reloaded, plus the
record-keeping tables empyrical has no function for (drawdown periods, FIFO round trips, P&L
attribution, equity before costs).

Everything here is a pure function of the run's record (equity, benchmark, trades, weights), so a
figure dated D only uses rows dated <= D: rolling windows look back, round trips close on their
exit fill, and gross equity adds the costs paid so far.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import empyrical as ep
import numpy as np
import pandas as pd

#: Trading days per year, the annualisation factor of every figure here.
PERIODS_PER_YEAR = 252

#: Rolling window of the rolling Sharpe, volatility and beta: three months of trading days.
ROLLING_WINDOW = 63

#: Rows of the worst-drawdowns table.
WORST_DRAWDOWNS = 5

ROUND_TRIP_COLUMNS = [
    "symbol", "entry_date", "exit_date", "holding_days", "quantity", "entry_price", "exit_price",
    "pnl", "return",
]  # fmt: skip


def returns_of(values: pd.Series) -> pd.Series:
    """Simple daily returns of a value series (the first known value is the starting point)."""
    values = values.dropna().astype(float)
    return values.pct_change(fill_method=None).iloc[1:]


def relative_figures(
    returns: pd.Series, bench_returns: pd.Series, periods_per_year: int = PERIODS_PER_YEAR
) -> dict[str, float]:
    """Alpha, beta, information ratio and tracking error of ``returns`` against the benchmark.

    Computed on the days both are known. ``alpha`` is empyrical's annualised alpha
    ((1 + daily intercept) ** periods_per_year - 1) with beta the regression slope; the
    information ratio is the mean active (portfolio - benchmark) daily return over its standard
    deviation, times sqrt(periods_per_year) (empyrical's ``excess_sharpe``, annualised); the
    tracking error is the annualised standard deviation of the active return.
    """
    both = pd.concat([returns, bench_returns], axis=1, join="inner").dropna()
    nan = float("nan")
    if len(both) < 2:
        return {"alpha": nan, "beta": nan, "information_ratio": nan, "tracking_error": nan}
    r, b = both.iloc[:, 0], both.iloc[:, 1]
    alpha, beta = ep.alpha_beta(r, b, annualization=periods_per_year)
    active = r - b
    tracking = float(ep.annual_volatility(active, annualization=periods_per_year))
    info = float(ep.excess_sharpe(r, b)) * np.sqrt(periods_per_year) if tracking > 0 else nan
    return {
        "alpha": float(alpha),
        "beta": float(beta),
        "information_ratio": info,
        "tracking_error": tracking,
    }


def rolling_figures(
    returns: pd.Series, bench_returns: pd.Series | None, window: int = ROLLING_WINDOW
) -> pd.DataFrame:
    """Rolling Sharpe, annualised volatility and (with a benchmark) beta over ``window`` days.

    Each row uses the ``window`` returns ending on its date; earlier rows are NaN.
    """
    out = pd.DataFrame(index=returns.index, columns=["sharpe", "volatility", "beta"], dtype=float)
    if len(returns) < window:
        return out
    kw = {"annualization": PERIODS_PER_YEAR}
    out["sharpe"] = ep.roll_sharpe_ratio(returns, window=window, **kw)
    out["volatility"] = ep.roll_annual_volatility(returns, window=window, **kw)
    if bench_returns is not None:
        bench = bench_returns.reindex(returns.index)
        out["beta"] = ep.roll_beta(returns, bench, window=window)
    return out


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month, as a year x month (1..12) table."""
    if returns.empty:
        return pd.DataFrame(columns=range(1, 13), dtype=float)
    monthly = ep.aggregate_returns(returns, "monthly")
    table = monthly.unstack()
    return table.reindex(columns=range(1, 13))


def yearly_returns(returns: pd.Series) -> pd.Series:
    """Compounded return of each calendar year (a partial first/last year covers its days)."""
    if returns.empty:
        return pd.Series(dtype=float)
    return ep.aggregate_returns(returns, "yearly")


def drawdown_periods(equity: pd.Series, top: int = WORST_DRAWDOWNS) -> pd.DataFrame:
    """The ``top`` deepest drawdowns: peak, trough, recovery date (NaT while under water), depth
    (a negative fraction) and length in trading days from peak to recovery (or to the end)."""
    equity = equity.dropna().astype(float)
    columns = ["peak", "trough", "recovery", "depth", "days"]
    if equity.empty:
        return pd.DataFrame(columns=columns)
    under = equity / equity.cummax() - 1.0
    rows = []
    start = None
    for i, value in enumerate(under.to_numpy()):
        if value < 0 and start is None:
            start = i - 1  # the peak is the last day at the high
        if start is not None and (value >= 0 or i == len(under) - 1):
            end = i if value >= 0 else None
            segment = under.iloc[start + 1 : (end if end is not None else i + 1)]
            rows.append(
                {
                    "peak": under.index[start],
                    "trough": segment.idxmin(),
                    "recovery": under.index[end] if end is not None else pd.NaT,
                    "depth": float(segment.min()),
                    "days": (end if end is not None else i) - start,
                }
            )
            start = None
    table = pd.DataFrame(rows, columns=columns)
    for col in ("peak", "trough", "recovery"):  # one dtype whether or not a NaT is among them
        table[col] = pd.to_datetime(table[col]).astype("datetime64[ns]")
    return table.sort_values("depth", kind="stable").head(top).reset_index(drop=True)


def round_trips(trades: pd.DataFrame) -> pd.DataFrame:
    """Closed positions matched first-in first-out: each sell closes the oldest open lots.

    A partly closed lot is split. ``pnl`` is the money made on the matched quantity after both
    fills' commissions (pro rata to quantity; slippage is already in the fill prices),
    ``return`` is exit price / entry price - 1 and ``holding_days`` is calendar days held.
    Lots still open at the end are not listed.
    """
    if trades.empty:
        return pd.DataFrame(columns=ROUND_TRIP_COLUMNS)
    ordered = trades.assign(date=pd.to_datetime(trades["date"])).sort_values("date", kind="stable")
    lots: dict[str, deque[list]] = {}
    rows = []
    for t in ordered.itertuples(index=False):
        qty = float(t.quantity)
        fee = float(getattr(t, "commission", 0.0) or 0.0) / qty if qty else 0.0
        if t.side == "buy":
            lots.setdefault(t.symbol, deque()).append([t.date, qty, float(t.price), fee])
            continue
        book = lots.get(t.symbol, deque())
        while qty > 1e-9 and book:
            lot = book[0]
            matched = min(qty, lot[1])
            pnl = matched * (float(t.price) - lot[2]) - matched * (lot[3] + fee)
            rows.append(
                {
                    "symbol": t.symbol, "entry_date": lot[0], "exit_date": t.date,
                    "holding_days": (t.date - lot[0]).days, "quantity": matched,
                    "entry_price": lot[2], "exit_price": float(t.price), "pnl": pnl,
                    "return": float(t.price) / lot[2] - 1.0,
                }
            )  # fmt: skip
            lot[1] -= matched
            qty -= matched
            if lot[1] <= 1e-9:
                book.popleft()
    return pd.DataFrame(rows, columns=ROUND_TRIP_COLUMNS)


def final_values(weights: pd.DataFrame | None, equity: pd.Series) -> pd.Series:
    """Market value of each symbol held on the last equity date (weight x equity)."""
    if weights is None or weights.empty or equity.empty:
        return pd.Series(dtype=float)
    last = weights.sort_index().reindex(equity.index, method="ffill").iloc[-1].fillna(0.0)
    return last * float(equity.iloc[-1])


def pnl_by_symbol(
    trades: pd.DataFrame, weights: pd.DataFrame | None, equity: pd.Series
) -> pd.Series:
    """Money each symbol made: sells - buys - commissions + value still held at the end.

    Cash moves only through fills, so these add up to final equity - starting cash.
    """
    held = final_values(weights, equity)
    if trades.empty:
        return held.sort_values(ascending=False)
    sign = np.where(trades["side"] == "sell", 1.0, -1.0)
    fees = trades["commission"].astype(float) if "commission" in trades else 0.0
    flow = (sign * trades["value"].astype(float) - fees).groupby(trades["symbol"]).sum()
    total = flow.add(held, fill_value=0.0)
    return total.sort_values(ascending=False)


def pnl_by_sector(pnl: pd.Series, sectors: Mapping[str, str | None]) -> pd.Series:
    """Per-symbol P&L summed by sector; symbols without a known sector count as "unknown"."""
    if pnl.empty:
        return pd.Series(dtype=float)
    names = [sectors.get(str(s)) or "unknown" for s in pnl.index]
    return pnl.groupby(names).sum().sort_values(ascending=False)


def costs_paid(trades: pd.DataFrame, index: pd.DatetimeIndex) -> pd.Series:
    """Commission + slippage paid up to and including each date of ``index`` (money)."""
    columns = [c for c in ("commission", "slippage") if c in trades.columns]
    if trades.empty or not columns:
        return pd.Series(0.0, index=index)
    daily = trades[columns].astype(float).sum(axis=1).groupby(pd.to_datetime(trades["date"])).sum()
    return daily.cumsum().reindex(index, method="ffill").fillna(0.0)


def gross_equity(equity: pd.Series, trades: pd.DataFrame) -> pd.Series:
    """Equity with the costs paid so far added back: what the book would be worth before costs.

    A first-order view of cost drag (it ignores the returns the paid costs would have earned).
    """
    return equity + costs_paid(trades, equity.index)


def exposure_and_cash(
    weights: pd.DataFrame | None, equity: pd.Series, cash: pd.Series | None
) -> pd.DataFrame:
    """Gross invested fraction (sum of weights) and cash fraction of equity on each date."""
    out = pd.DataFrame(index=equity.index, columns=["invested", "cash"], dtype=float)
    if weights is not None and not weights.empty:
        gross = weights.abs().sum(axis=1).sort_index()
        out["invested"] = gross.reindex(equity.index, method="ffill").fillna(0.0)
    if cash is not None:
        out["cash"] = cash.reindex(equity.index) / equity
    return out


def top_weights(weights: pd.DataFrame, top: int) -> pd.DataFrame:
    """Weights with the ``top`` symbols by average weight and the rest summed into "other".

    Keeps charts readable and the file small for wide universes (50+ symbols); the rows still add
    up to the invested fraction.
    """
    weights = weights.fillna(0.0).sort_index()
    if weights.shape[1] <= top:
        return weights
    keep = weights.mean().sort_values(ascending=False).index[:top]
    out = weights[keep].copy()
    out["other"] = weights.drop(columns=keep).sum(axis=1)
    return out


def monthly_turnover(trades: pd.DataFrame, equity: pd.Series) -> pd.Series:
    """One-way turnover per month: traded value / 2 / mean equity of the month.

    The same rule as the ``turnover`` metric, so a year of months adds up to the annual figure.
    """
    months = equity.groupby(equity.index.to_period("M")).mean()
    if trades.empty:
        return pd.Series(0.0, index=months.index)
    dates = pd.to_datetime(trades["date"])
    traded = trades["value"].abs().groupby(dates.dt.to_period("M").to_numpy()).sum()
    return (traded.reindex(months.index, fill_value=0.0) / 2.0 / months).fillna(0.0)


__all__ = [
    "PERIODS_PER_YEAR",
    "ROLLING_WINDOW",
    "ROUND_TRIP_COLUMNS",
    "WORST_DRAWDOWNS",
    "costs_paid",
    "drawdown_periods",
    "exposure_and_cash",
    "final_values",
    "gross_equity",
    "monthly_returns",
    "monthly_turnover",
    "pnl_by_sector",
    "pnl_by_symbol",
    "relative_figures",
    "returns_of",
    "rolling_figures",
    "round_trips",
    "top_weights",
    "yearly_returns",
]
