"""vectorbt's return figures of one return series, in numpy, with vectorbt's float operations.

:mod:`engine.metrics` reports seven figures of vectorbt's ``ReturnsAccessor`` (defaults: risk-free
and required return 0, ``ddof`` 1, Levy alpha 2). Importing vectorbt and compiling its numba
kernels cost ~2 s of every backtest for those seven numbers, so this module evaluates the same
kernels (``vectorbt.returns.nb``: ``cum_returns_final_1d_nb``, ``annualized_return_1d_nb``,
``annualized_volatility_1d_nb``, ``sharpe_ratio_1d_nb``, ``sortino_ratio_1d_nb``,
``max_drawdown_1d_nb``, ``calmar_ratio_1d_nb``) step for step: numba's ``nanmean`` / ``nanvar`` /
``nanprod`` are left-to-right loops from 0 (or 1) skipping NaN, reproduced here by ``cumsum`` /
``cumprod`` (numpy's accumulations are sequential, unlike its pairwise ``sum``). The tests hold
every figure equal to vectorbt's own to the bit; vectorbt stays the definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _sum(values: np.ndarray) -> float:
    """``0.0 + v0 + v1 + ...`` left to right (numba's reduction loop), not pairwise."""
    return float(np.cumsum(np.concatenate([[0.0], values]))[-1])


def _nanmean(values: np.ndarray) -> float:
    """numba's ``np.nanmean``: the sequential sum of the non-NaN values over their count."""
    ok = values[~np.isnan(values)]
    return _sum(ok) / len(ok) if len(ok) else math.nan


def _nanvar(values: np.ndarray) -> float:
    """numba's ``np.nanvar`` (ddof 0): sequential sum of squared deviations over the count."""
    ok = values[~np.isnan(values)]
    if not len(ok):
        return math.nan
    dev = ok - _nanmean(values)
    return _sum(dev * dev) / len(ok)


def _nanstd(values: np.ndarray, ddof: int) -> float:
    """vectorbt's ``nanstd_1d_nb``: ``sqrt(nanvar * count / (count - ddof))``."""
    count = len(values) - int(np.count_nonzero(np.isnan(values)))
    rcount = max(count - ddof, 0)
    if rcount == 0:
        return math.nan
    return math.sqrt(_nanvar(values) * count / rcount)


def _cum_values(returns: np.ndarray) -> np.ndarray:
    """``cum_returns_1d_nb(returns, 1)``: the running product of ``1 + r`` (NaN returns skipped)."""
    factors = np.where(np.isnan(returns), 1.0, returns + 1.0)
    return np.cumprod(np.concatenate([[1.0], factors]))[1:]


@dataclass(frozen=True)
class ReturnFigures:
    """The figures of one series of period returns, ``ann_factor`` periods per year."""

    returns: np.ndarray
    ann_factor: float
    ddof: int = 1
    levy_alpha: float = 2.0

    def total(self) -> float:
        """Compounded total return (``cum_returns_final_1d_nb`` from 0)."""
        if not len(self.returns):
            return 0.0  # numba's product of nothing is 1
        return float(_cum_values(self.returns)[-1]) - 1.0

    def annualized(self) -> float:
        """Compound annual growth rate (``annualized_return_1d_nb``)."""
        n = len(self.returns)
        if n == 0:
            return math.nan
        end_value = float(_cum_values(self.returns)[-1]) * 1.0
        return _pow(end_value, self.ann_factor / n) - 1

    def annualized_volatility(self) -> float:
        """Standard deviation (``ddof``) scaled by ``ann_factor ** (1 / levy_alpha)``."""
        if len(self.returns) < 2:
            return math.nan
        return _nanstd(self.returns, self.ddof) * _pow(self.ann_factor, 1.0 / self.levy_alpha)

    def sharpe_ratio(self) -> float:
        """Mean / standard deviation * sqrt(ann_factor); inf for a zero deviation."""
        if len(self.returns) < 2:
            return math.nan
        adjusted = self.returns - 0.0
        std = _nanstd(adjusted, self.ddof)
        if std == 0.0:
            return math.inf
        return _nanmean(adjusted) / std * math.sqrt(self.ann_factor)

    def sortino_ratio(self) -> float:
        """Annualised mean / downside deviation below 0; inf without a downside."""
        if len(self.returns) < 2:
            return math.nan
        adjusted = self.returns - 0.0
        average = _nanmean(adjusted) * self.ann_factor
        below = np.where(adjusted > 0, 0.0, adjusted)
        downside = math.sqrt(_nanmean(below * below)) * math.sqrt(self.ann_factor)
        if downside == 0.0:
            return math.inf
        return average / downside

    def max_drawdown(self) -> float:
        """Deepest fall below the running peak of the compounded value (a negative fraction)."""
        if not len(self.returns):
            raise ValueError("max_drawdown of no returns")  # numba's min of an empty array
        values = _cum_values(self.returns) * 100.0
        peaks = np.fmax.accumulate(values)
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 after a total loss
            return float(np.min(values / peaks - 1))

    def calmar_ratio(self) -> float:
        """Annualized return / |max drawdown|; NaN without a drawdown."""
        max_drawdown = self.max_drawdown()
        if max_drawdown == 0.0:
            return math.nan
        return self.annualized() / abs(max_drawdown)


def _pow(base: float, exponent: float) -> float:
    """C ``pow`` as numba calls it: NaN (not a complex number) for a negative base."""
    try:
        result = base**exponent
    except (OverflowError, ZeroDivisionError):
        return math.inf if base > 0 or exponent < 0 else math.nan
    return math.nan if isinstance(result, complex) else float(result)
