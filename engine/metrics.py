"""The figures of a backtest: one pure function of the record (equity, benchmark, trades, weights).

Return, risk and ratio figures are those of vectorbt's returns accessor (``ReturnsAccessor``:
``total``, ``annualized``, ``annualized_volatility``, ``sharpe_ratio``, ``sortino_ratio``,
``max_drawdown``, ``calmar_ratio``), so their definitions are a library's, documented and shared
with other tools. :mod:`engine.returns_figures` computes them with vectorbt's own float operations
in numpy (the tests hold every figure equal to vectorbt's to the bit), because importing vectorbt
and compiling its numba functions cost ~2 s of every run for seven numbers. The few figures
vectorbt does not have (turnover, hit rate, exposure, costs) are defined in
:func:`compute_metrics`; the benchmark-relative ones (alpha, beta, information ratio, tracking
error) come from empyrical-reloaded (:func:`engine.tearsheet.stats.relative_figures`).

Every value is a plain Python ``float`` (or ``None`` where the figure is undefined: NaN, +-inf or a
zero-volatility Sharpe), so the dict goes to JSON as is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engine.returns_figures import ReturnFigures

#: Below this annualised volatility a curve counts as flat: vectorbt's Sharpe of a constant-return
#: curve is mean / (floating-point noise), a huge meaningless number, so it is reported as None.
ZERO_VOLATILITY = 1e-10

#: The figures vectorbt's returns accessor gives for one return series.
RETURN_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "annualized_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
)

METRIC_KEYS: tuple[str, ...] = (
    *RETURN_KEYS,
    "benchmark_total_return",
    "benchmark_cagr",
    "benchmark_sharpe",
    "benchmark_max_drawdown",
    "excess_return",
    "excess_total_return",
    "alpha",
    "beta",
    "information_ratio",
    "tracking_error",
    "turnover",
    "hit_rate",
    "n_trades",
    "total_costs",
    "costs_to_capital",
    "exposure",
    "years",
)


def to_json_float(value: Any) -> float | None:
    """A plain float, or None for NaN, +-inf and missing values (JSON has no NaN)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def align_benchmark(benchmark: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """The benchmark's close on each of ``index``'s dates, forward-filled from the last known close.

    Each date takes the last close at or before it, never a later one, so a day the benchmark did
    not trade (a holiday in its market) repeats the previous close instead of peeking ahead. Dates
    before the benchmark's first close stay NaN.
    """
    bench = benchmark.dropna()
    bench = bench[~bench.index.duplicated(keep="last")].sort_index()
    return bench.reindex(index, method="ffill").astype(float)


def _returns(values: pd.Series) -> pd.Series:
    """Simple period returns of a value series; the first known value is the starting point."""
    values = values.dropna()
    return values.pct_change(fill_method=None).iloc[1:]


def _vbt_figures(returns: pd.Series, periods_per_year: int) -> dict[str, float | None]:
    """Return, risk and ratio figures of vectorbt's returns accessor (see the module docstring).

    vectorbt's ``freq="1D"`` with ``year_freq=f"{periods_per_year}D"`` makes the annualisation
    factor ``periods_per_year`` per observation: each row is one trading day, whatever the
    calendar gap.
    """
    if len(returns) == 0:
        return dict.fromkeys(RETURN_KEYS)
    fig = ReturnFigures(returns.to_numpy(dtype=np.float64), float(periods_per_year))
    volatility = to_json_float(fig.annualized_volatility())
    flat = volatility is not None and volatility < ZERO_VOLATILITY
    max_dd = to_json_float(fig.max_drawdown())
    return {
        "total_return": to_json_float(fig.total()),
        "cagr": to_json_float(fig.annualized()),
        "annualized_volatility": volatility,
        "sharpe_ratio": None if flat else to_json_float(fig.sharpe_ratio()),
        "sortino_ratio": None if flat else to_json_float(fig.sortino_ratio()),
        "max_drawdown": max_dd,
        "calmar_ratio": None if not max_dd else to_json_float(fig.calmar_ratio()),
    }


def annual_turnover(trades: pd.DataFrame, equity: pd.Series, years: float) -> float | None:
    """One-way turnover per year: sum of |traded value| / 2 / mean equity / years.

    Halving counts a full switch of the book (sell everything, buy something else) as 100%, the
    usual one-way convention; the initial purchase from cash counts as 50%.
    """
    if years <= 0 or equity.empty:
        return None
    traded = float(trades["value"].abs().sum()) if len(trades) else 0.0
    return to_json_float(traded / 2.0 / float(equity.mean()) / years)


def hit_rate(returns: pd.Series) -> float | None:
    """Share of positive daily returns among days whose return is not zero.

    Chosen over round-trip trades because a rebalancing portfolio rarely closes whole positions,
    so round trips are ill-defined; days spent entirely in cash (return exactly 0) are left out.
    """
    moved = returns[returns != 0].dropna()
    return float((moved > 0).mean()) if len(moved) else None


def exposure(weights: pd.DataFrame | None, index: pd.DatetimeIndex) -> float | None:
    """Mean gross invested fraction (sum of |weight| per day) over ``index``'s dates.

    Weights are forward-filled onto the equity dates, so weights given only on rebalance days
    count until the next rebalance; days before the first weights count as uninvested (0).
    """
    if weights is None or weights.empty or len(index) == 0:
        return None
    gross = weights.abs().sum(axis=1).sort_index()
    gross = gross[~gross.index.duplicated(keep="last")]
    return to_json_float(gross.reindex(index, method="ffill").fillna(0.0).mean())


def compute_metrics(
    equity: pd.Series,
    benchmark: pd.Series | None,
    trades: pd.DataFrame,
    weights: pd.DataFrame | None = None,
    periods_per_year: int = 252,
    initial_capital: float | None = None,
) -> dict[str, float | None]:
    """The figures of a backtest, JSON-safe; a pure function of the record.

    Parameters
    ----------
    equity
        Daily portfolio value on a DatetimeIndex; its first value is the starting capital.
    benchmark
        Daily close of the index, aligned onto ``equity``'s dates by :func:`align_benchmark`
        (forward-filled, no look-ahead); ``None`` leaves the benchmark figures None.
    trades
        One row per fill: date, symbol, side ("buy"/"sell"), quantity, price, value (positive),
        commission, slippage.
    weights
        Optional holdings as fractions of equity (dates x symbols), for ``exposure``.
    periods_per_year
        Observations per year for annualisation (252 trading days).
    initial_capital
        The starting cash, for ``costs_to_capital``; default the first equity value.

    Returns
    -------
    dict
        ``total_return``, ``cagr`` (vectorbt ``annualized``), ``annualized_volatility``,
        ``sharpe_ratio`` (risk-free 0, ddof 1; None for a flat curve), ``sortino_ratio``,
        ``max_drawdown`` (a negative fraction, -0.2 for 20% below the peak), ``calmar_ratio``
        (None without a drawdown); the ``benchmark_*`` equivalents; ``excess_return`` = cagr -
        benchmark_cagr; ``excess_total_return`` = total_return - benchmark_total_return;
        ``alpha``, ``beta``, ``information_ratio``, ``tracking_error`` against the benchmark
        (empyrical-reloaded, see :func:`engine.tearsheet.stats.relative_figures`);
        ``turnover`` (:func:`annual_turnover`), ``hit_rate`` (:func:`hit_rate`), ``n_trades``
        (fills), ``total_costs`` (commission + slippage, money), ``costs_to_capital``
        (total_costs / initial capital), ``exposure`` (:func:`exposure`), ``years`` (return
        periods / periods_per_year).
        Benchmark figures cover the equity dates on which the benchmark is known.
    """
    if not isinstance(equity.index, pd.DatetimeIndex):
        raise TypeError(f"equity needs a DatetimeIndex, got {type(equity.index).__name__}")
    equity = equity.dropna().sort_index().astype(float)
    returns = _returns(equity)
    years = len(returns) / periods_per_year

    out: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    out.update(_vbt_figures(returns, periods_per_year))

    if benchmark is not None and len(benchmark.dropna()):
        bench = _vbt_figures(_returns(align_benchmark(benchmark, equity.index)), periods_per_year)
        out["benchmark_total_return"] = bench["total_return"]
        out["benchmark_cagr"] = bench["cagr"]
        out["benchmark_sharpe"] = bench["sharpe_ratio"]
        out["benchmark_max_drawdown"] = bench["max_drawdown"]
        out["excess_return"] = _diff(out["cagr"], bench["cagr"])
        out["excess_total_return"] = _diff(out["total_return"], bench["total_return"])
        # lazy: engine.tearsheet imports this module
        from engine.tearsheet.stats import relative_figures

        bench_returns = _returns(align_benchmark(benchmark, equity.index))
        out.update(relative_figures(returns, bench_returns, periods_per_year))

    out["turnover"] = annual_turnover(trades, equity, years)
    out["hit_rate"] = hit_rate(returns)
    out["n_trades"] = float(len(trades))
    costs = [c for c in ("commission", "slippage") if c in trades.columns]
    out["total_costs"] = to_json_float(trades[costs].to_numpy(dtype=float).sum()) if costs else 0.0
    capital = initial_capital if initial_capital is not None else _first(equity)
    if out["total_costs"] is not None and capital:
        out["costs_to_capital"] = out["total_costs"] / capital
    out["exposure"] = exposure(weights, equity.index)
    out["years"] = to_json_float(years)
    return {key: to_json_float(value) for key, value in out.items()}


def _first(values: pd.Series) -> float | None:
    return float(values.iloc[0]) if len(values) else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


__all__ = [
    "METRIC_KEYS",
    "align_benchmark",
    "annual_turnover",
    "compute_metrics",
    "exposure",
    "hit_rate",
    "to_json_float",
]
