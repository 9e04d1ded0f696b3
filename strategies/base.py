"""The strategy contract: scores as of a day in, target weights out.

A strategy never reads the clock or the store; the runner hands it a :class:`PlanContext` built
from the simulation view, so it cannot see past the day it decides on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import ClassVar, NamedTuple

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
    current_weights: the portfolio's weights at ``as_of``'s close (empty for a strategy whose
        ``needs_weights`` is False).
    """

    as_of: date
    scores: pd.DataFrame
    closes: pd.DataFrame
    current_weights: pd.Series


@dataclass(frozen=True)
class ArrayContext:
    """What a strategy with an array path (``array_path = True``) knows on its decision day: the
    values of :class:`PlanContext` as numpy, with no pandas object built per rebalance.

    closes: ``PlanContext.closes.to_numpy()``: trailing closes, oldest row first, the last row
        ``as_of`` (NaN where a symbol has no bar); empty when the strategy needs no history.
    symbols: the columns of ``closes`` (``PlanContext.closes.columns``): the investable symbols
        with a bar in the window, in universe order.
    universe: the investable symbols that day (``PlanContext.scores.index``).
    current_weights: as in :class:`PlanContext`.
    """

    as_of: date
    closes: np.ndarray
    symbols: pd.Index
    universe: list[str]
    current_weights: pd.Series


class Strategy:
    """Maps a :class:`PlanContext` to target weights (>= 0, summing to at most 1)."""

    name: ClassVar[str]
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    uses_scores: ClassVar[bool] = True
    #: Whether ``PlanContext.closes`` must hold trailing prices (skipped otherwise, for speed).
    needs_history: ClassVar[bool] = False
    #: Whether ``PlanContext.current_weights`` must hold the book's weights (an empty Series
    #: otherwise, for speed: building it costs more than some strategies' whole decision).
    needs_weights: ClassVar[bool] = True
    #: Whether :meth:`target_array` decides from numpy arrays alone (the runner then builds no
    #: ``PlanContext``); only for a strategy that uses no scores (``uses_scores = False``).
    array_path: ClassVar[bool] = False

    def __init__(self, params: StrategyParams | None = None):
        self.params = params or self.Params()

    @property
    def history_days(self) -> int:
        """Trading days of closes the strategy needs in ``PlanContext.closes``."""
        return 260

    def target_weights(self, ctx: PlanContext) -> pd.Series:  # pragma: no cover - interface
        raise NotImplementedError

    def target_array(self, ctx: ArrayContext) -> Targets:  # pragma: no cover - interface
        """:meth:`target_weights` from the arrays of ``ctx``, as arrays (the same weights:
        ``target_array(...).series()`` is the Series ``target_weights`` returns); the runner
        calls it instead when ``array_path`` is set."""
        raise NotImplementedError


class Targets(NamedTuple):
    """Target weights as arrays, ``weights[i]`` for ``symbols[i]``: a decision whose Series is
    built only when read (a pandas Series per rebalance costs more than the decision)."""

    symbols: np.ndarray  # object array of the symbols
    weights: np.ndarray  # float64, >= 0

    def series(self) -> pd.Series:
        """The weights as ``target_weights`` returns them (unnamed object index)."""
        if not len(self.symbols):
            return no_weights()
        index = pd.Index(self.symbols, dtype=_OBJECT, copy=False)
        return pd.Series(self.weights, index=index, copy=False)

    @classmethod
    def equal(cls, symbols: np.ndarray) -> Targets:
        """1/N for each of ``symbols`` (:func:`equal_weight` as arrays)."""
        n = len(symbols)
        return cls(symbols, np.full(n, 1.0 / n) if n else np.empty(0))


#: pandas parses a dtype given as a name or a type under ``warnings.catch_warnings`` (slow in a
#: loop); a numpy dtype object is taken as is.
_OBJECT = np.dtype(object)
_FLOAT = np.dtype(np.float64)


#: Hold nothing, as arrays (read-only: shared by every such decision).
NO_TARGETS = Targets(np.empty(0, dtype=_OBJECT), np.empty(0, dtype=_FLOAT))
NO_TARGETS.symbols.flags.writeable = False
NO_TARGETS.weights.flags.writeable = False


def no_weights() -> pd.Series:
    """Hold nothing: an empty float Series of target weights."""
    return pd.Series(dtype=_FLOAT)


def equal_weight(symbols: list[str] | pd.Index) -> pd.Series:
    """1/N for each of ``symbols`` (an index of labels is reused as is, unnamed)."""
    if not len(symbols):
        return no_weights()
    if isinstance(symbols, pd.Index) and symbols.dtype == object:
        index = symbols.rename(None)
    else:  # an object index from an array: pandas' string inference costs more than the plan
        index = pd.Index(np.array(symbols, dtype=object), dtype=_OBJECT, copy=False)
    return pd.Series(np.full(len(symbols), 1.0 / len(symbols)), index=index, copy=False)
