"""Example plug-in strategy (docs/guides/write_a_strategy.md): calm names, inverse-vol weights.

Put this file in a strategy folder (``strategy.dir`` in the config, ``$SENTINEL_STRATEGIES_DIR``
or ``./user_strategies``) and name it in a config as ``strategy: {name: low_volatility}``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from strategies.base import PlanContext, Strategy, StrategyParams


class LowVolatilityParams(StrategyParams):
    n: int = Field(default=5, ge=1, description="How many of the calmest names to hold.")
    lookback: int = Field(default=60, ge=5, le=504, description="Trading days of returns.")


class LowVolatility(Strategy):
    """Hold the ``n`` names with the lowest trailing volatility, weighted by 1 / volatility.

    Uses no score (``uses_scores = False``) and only ``ctx.closes``, which the runner cuts at the
    decision day: the strategy cannot see the future even if it tried.
    """

    name = "low_volatility"
    Params = LowVolatilityParams
    uses_scores = False
    needs_history = True

    @property
    def history_days(self) -> int:
        p: LowVolatilityParams = self.params  # type: ignore[assignment]
        return p.lookback + 1

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        p: LowVolatilityParams = self.params  # type: ignore[assignment]
        closes = ctx.closes.loc[:, ctx.closes.columns.isin(ctx.scores.index)].tail(p.lookback + 1)
        if len(closes) < p.lookback + 1:
            return pd.Series(dtype="float64")  # not enough history yet: stay in cash
        vol = closes.pct_change(fill_method=None).iloc[1:].std()
        vol = vol[np.isfinite(vol) & (vol > 0)].sort_index()  # ties go to the first symbol
        calm = vol.sort_values(kind="stable").head(p.n)
        if calm.empty:
            return pd.Series(dtype="float64")
        inverse = 1.0 / calm
        return inverse / inverse.sum()
