"""The shipped strategies: top-N, score-weighted, and a momentum baseline with no ML."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from strategies.base import (
    NO_TARGETS,
    ArrayContext,
    PlanContext,
    Strategy,
    StrategyParams,
    Targets,
    equal_weight,
    no_weights,
)


class TopNParams(StrategyParams):
    n: int = Field(default=10, ge=1, description="How many of the best scores to hold.")
    min_score: float = Field(default=0.0, ge=0.0, le=1.0, description="Hold nothing below it.")


class TopN(Strategy):
    """Equal weight in the N best blended scores."""

    name = "top_n"
    Params = TopNParams
    needs_weights = False

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        """The ``n`` best scores at or above ``min_score`` (NaN: no score), ties to the first
        symbol by name so the same scores always give the same portfolio.

        ``scores.dropna()``, a filter, ``sort_index()`` and a stable descending
        ``sort_values().head(n)``, in numpy: the pandas chain cost more than the rest of the
        rebalance (the tests hold the two equal).
        """
        p: TopNParams = self.params  # type: ignore[assignment]
        column = ctx.scores["blended_score"]
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        keep = np.flatnonzero(values >= p.min_score)  # NaN compares False: dropped
        symbols = column.index.to_numpy(dtype=object)[keep]
        by_name = np.argsort(symbols, kind="stable")
        symbols, values = symbols[by_name], values[keep][by_name]
        return equal_weight(list(symbols[top(values, p.n)]))


class ScoreWeightedParams(StrategyParams):
    n: int = Field(default=20, ge=1, description="How many of the best scores to hold.")
    max_weight: float = Field(default=0.10, gt=0.0, le=1.0, description="Cap per position.")
    power: float = Field(default=1.0, gt=0.0, description="Sharpen (>1) or flatten (<1) scores.")


class ScoreWeighted(Strategy):
    """The N best scores, weighted by score above the median (to a power), capped per position."""

    name = "score_weighted"
    Params = ScoreWeightedParams
    needs_weights = False

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        p: ScoreWeightedParams = self.params  # type: ignore[assignment]
        s = ctx.scores["blended_score"].dropna().sort_index()
        best = s.sort_values(ascending=False, kind="stable").head(p.n)
        if best.empty:
            return no_weights()
        raw = np.power(np.clip(best.to_numpy(), 1e-6, None), p.power)
        w = pd.Series(raw / raw.sum(), index=best.index)
        return _cap(w, p.max_weight)


def _cap(w: pd.Series, cap: float) -> pd.Series:
    """Cap weights, handing the excess to the uncapped names; leftover stays in cash."""
    w = w.copy()
    for _ in range(len(w)):
        over = w > cap + 1e-12
        if not over.any():
            break
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = ~over & (w < cap)
        if not free.any():
            break
        w[free] += excess * w[free] / w[free].sum()
    return w


class MomentumParams(StrategyParams):
    n: int = Field(default=10, ge=1, description="How many of the strongest names to hold.")
    lookback: int = Field(default=126, ge=5, le=504, description="Trading days of momentum.")
    skip: int = Field(default=21, ge=0, le=63, description="Most recent days left out.")


class Momentum(Strategy):
    """Baseline with no ML and no wavelet: the N best trailing returns (skipping the last month)."""

    name = "momentum"
    Params = MomentumParams
    needs_weights = False
    uses_scores = False
    needs_history = True
    array_path = True

    @property
    def history_days(self) -> int:
        p: MomentumParams = self.params  # type: ignore[assignment]
        return p.lookback + 1

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        columns = ctx.closes.columns
        pos = None  # candidates, as column positions (None: all)
        if not columns.equals(ctx.scores.index):  # the usual case is cheap: the same symbols
            pos = np.flatnonzero(columns.isin(ctx.scores.index))
        return self._best(ctx.closes.to_numpy(), columns, pos).series()

    def target_array(self, ctx: ArrayContext) -> Targets:
        return self._best(ctx.closes, ctx.symbols, None)

    def _best(self, values: np.ndarray, columns: pd.Index, pos: np.ndarray | None) -> Targets:
        """Equal weight in the ``n`` best momenta of ``values``' columns (``pos``: those that
        may be picked; None: all)."""
        p: MomentumParams = self.params  # type: ignore[assignment]
        if len(values) < p.lookback + 1:
            return NO_TARGETS
        new, old = values[-1 - p.skip], values[-1 - p.lookback]  # the two rows it needs
        if pos is None:
            pos = np.arange(len(columns))
        with np.errstate(divide="ignore", invalid="ignore"):
            mom = new[pos] / old[pos] - 1.0
        ok = np.isfinite(mom)
        pos, mom = pos[ok], mom[ok]
        if not columns.is_monotonic_increasing:  # ties go to the first symbol by name
            by_name = np.argsort(columns.to_numpy(dtype=object)[pos], kind="stable")
            pos, mom = pos[by_name], mom[by_name]
        return Targets.equal(columns.to_numpy()[pos[top(mom, p.n)]])


def top(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest ``values``, largest first, ties to the lower position: the
    first ``n`` of a stable descending sort, without sorting all of them (only those at or above
    the n-th largest value)."""
    if n >= len(values):
        return np.argsort(-values, kind="stable")
    kth = np.partition(values, len(values) - n)[len(values) - n]  # the n-th largest
    candidates = np.flatnonzero(values >= kth)
    return candidates[np.argsort(-values[candidates], kind="stable")[:n]]
