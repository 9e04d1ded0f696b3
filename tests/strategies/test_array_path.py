"""A strategy's array path decides as its pandas path does: ``target_array(...).series()`` is the
Series ``target_weights`` returns for the same closes (gaps, ties, unsorted names, short
histories), and :class:`Targets` turns into that Series exactly."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import STRATEGIES, PlanContext
from strategies.base import NO_TARGETS, ArrayContext, Targets, equal_weight, no_weights
from strategies.rules import Momentum, MomentumParams

NO_WEIGHTS = pd.Series(dtype="float64")


def _contexts(values: np.ndarray, names: list[str]) -> tuple[PlanContext, ArrayContext]:
    """The two contexts the runner would build for one day's closes."""
    columns = pd.Index(np.array(names, dtype=object), dtype=object, name="symbol")
    closes = pd.DataFrame(values, index=pd.bdate_range("2020-01-01", periods=len(values)),
                          columns=columns)  # fmt: skip
    scores = pd.DataFrame({}, index=columns)
    day = date(2020, 6, 1)
    return (PlanContext(day, scores, closes, NO_WEIGHTS),
            ArrayContext(day, values, columns, names, NO_WEIGHTS))  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12), st.integers(5, 12), st.integers(0, 4), st.integers(1, 8),
    st.lists(st.sampled_from([np.nan, 0.0, 1.0, 2.0, 3.0, 4.0]), min_size=14 * 9,
             max_size=14 * 9),
    st.permutations([f"S{k}" for k in range(9)]), st.integers(1, 9),
)  # fmt: skip
def test_momentum_arrays_decide_as_the_frame(n, lookback, skip, rows, cells, order, width):
    params = MomentumParams(n=n, lookback=lookback, skip=skip)
    strat = Momentum(params)
    values = np.array(cells, dtype=float).reshape(14, 9)[: lookback + rows - 4, :width]
    names = list(order[:width])  # unsorted names: ties go to the first by name either way
    pandas_ctx, array_ctx = _contexts(values, names)
    want = strat.target_weights(pandas_ctx)
    got = strat.target_array(array_ctx)
    assert isinstance(got, Targets)
    pd.testing.assert_series_equal(got.series(), want, check_exact=True)


def test_momentum_picks_the_strongest_and_holds_nothing_without_history():
    values = np.vstack([np.full(4, 10.0), [11.0, 15.0, 9.0, 12.0]])
    strat = Momentum(MomentumParams(n=2, lookback=5, skip=0))
    _, ctx = _contexts(values, ["A", "B", "C", "D"])
    assert strat.target_array(ctx) is NO_TARGETS  # 2 rows < lookback + 1
    strat = Momentum(MomentumParams(n=2, lookback=5, skip=0))
    long = np.vstack([np.full((5, 4), 10.0), values[1:]])
    _, ctx = _contexts(long, ["A", "B", "C", "D"])
    got = strat.target_array(ctx).series()
    assert got.to_dict() == {"B": 0.5, "D": 0.5}


def test_targets_turn_into_the_series_the_pandas_path_returns():
    names = np.array(["X", "Y", "Z"], dtype=object)
    pd.testing.assert_series_equal(Targets.equal(names).series(), equal_weight(list(names)),
                                   check_exact=True)  # fmt: skip
    pd.testing.assert_series_equal(NO_TARGETS.series(), no_weights())
    pd.testing.assert_series_equal(Targets.equal(names[:0]).series(), no_weights())
    w = Targets(names, np.array([0.2, 0.3, 0.1])).series()
    assert w.to_dict() == {"X": 0.2, "Y": 0.3, "Z": 0.1} and w.index.name is None


def test_only_strategies_that_use_no_scores_offer_the_array_path():
    offered = {name for name, cls in STRATEGIES.items() if cls.array_path}
    assert offered == {"momentum"}
    assert all(not STRATEGIES[name].uses_scores for name in offered)
