"""Example plug-in feature (docs/guides/add_a_feature.md): the mean overnight gap of 5 days.

Name it in a run config as ``ml: {features: [default, "overnight_gap:overnight_gap"]}`` with this
folder on ``PYTHONPATH``; the models then get 21 inputs.
"""

from __future__ import annotations

import pandas as pd

from sentinel.feature_registry import feature


@feature(default=0.0)
def overnight_gap(bars: pd.DataFrame) -> pd.Series:
    """Mean of open_t / close_{t-1} - 1 over the last 5 bars.

    Causal: ``shift(1)`` looks back one bar and ``rolling(5)`` ends at t, so the value on day t
    uses bars up to t only. The first 5 bars are NaN and take the default (no gap).
    """
    gap = bars["open"] / bars["close"].shift(1) - 1.0
    return gap.rolling(5, min_periods=5).mean()
