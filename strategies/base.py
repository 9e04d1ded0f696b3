"""The strategy contract: scores as of a day in, target weights out.

A strategy never reads the clock or the store; the runner hands it a :class:`PlanContext` built
from the simulation view, so it cannot see past the day it decides on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict


class StrategyParams(BaseModel):
    """Base of every strategy's typed parameters: unknown keys rejected, values strict.

    Strict: ``n: true`` or ``n: "5"`` is refused where an integer is expected (an integer is fine
    where a float is), and so are NaN and infinity.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


@dataclass(frozen=True)
class PlanContext:
    """What a strategy may know on its decision day.

    scores: index = symbol (the investable universe that day); columns include ``blended_score``,
        ``wavelet_score``, ``ml_score`` (NaN without a model), ``predicted_return``.
    closes: wide close panel (date x symbol) up to ``as_of``: trailing history for baselines.
    current_weights: the portfolio's weights at ``as_of``'s close.
    """

    as_of: date
    scores: pd.DataFrame
    closes: pd.DataFrame
    current_weights: pd.Series


class Strategy:
    """Maps a :class:`PlanContext` to target weights (>= 0, summing to at most 1)."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    uses_scores: ClassVar[bool] = True
    #: Whether ``PlanContext.closes`` must hold trailing prices (skipped otherwise, for speed).
    needs_history: ClassVar[bool] = False

    def __init__(self, params: StrategyParams | None = None):
        self.params = params or self.Params()

    @property
    def history_days(self) -> int:
        """Trading days of closes the strategy needs in ``PlanContext.closes``."""
        return 260

    def target_weights(self, ctx: PlanContext) -> pd.Series:  # pragma: no cover - interface
        raise NotImplementedError


def equal_weight(symbols: list[str]) -> pd.Series:
    if not symbols:
        return pd.Series(dtype="float64")
    # an object index from an array: pandas' string inference costs more than the whole plan
    index = pd.Index(np.array(symbols, dtype=object), dtype=object, copy=False)
    return pd.Series(np.full(len(symbols), 1.0 / len(symbols)), index=index, copy=False)
