"""Strategies: weights are long-only, sum to at most 1, deterministic, and use only the context."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import STRATEGIES, PlanContext


def _ctx(n=30, seed=0) -> PlanContext:
    rng = np.random.default_rng(seed)
    syms = [f"S{i:02d}" for i in range(n)]
    scores = pd.DataFrame({"blended_score": rng.uniform(size=n)}, index=syms)
    closes = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, n)), axis=0)),
        index=pd.bdate_range("2019-01-01", periods=300), columns=syms,
    )  # fmt: skip
    return PlanContext(date(2020, 2, 1), scores, closes, pd.Series(dtype="float64"))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_weights_are_valid_and_deterministic(name):
    strat = STRATEGIES[name](STRATEGIES[name].Params())
    w1 = strat.target_weights(_ctx())
    w2 = strat.target_weights(_ctx())
    assert (w1 >= 0).all() and w1.sum() <= 1 + 1e-9 and len(w1) > 0
    pd.testing.assert_series_equal(w1, w2)


def test_top_n_picks_best_scores():
    ctx = _ctx()
    w = STRATEGIES["top_n"](STRATEGIES["top_n"].Params(n=3)).target_weights(ctx)
    best = ctx.scores["blended_score"].nlargest(3).index
    assert set(w.index) == set(best) and np.allclose(w, 1 / 3)


def test_score_weighted_caps_positions():
    p = STRATEGIES["score_weighted"].Params(n=5, max_weight=0.25)
    w = STRATEGIES["score_weighted"](p).target_weights(_ctx())
    assert w.max() <= 0.25 + 1e-12 and w.sum() == pytest.approx(1.0)


def test_momentum_needs_history_and_ignores_scores():
    ctx = _ctx()
    short = PlanContext(ctx.as_of, ctx.scores, ctx.closes.tail(50), ctx.current_weights)
    strat = STRATEGIES["momentum"](STRATEGIES["momentum"].Params(n=5))
    assert strat.target_weights(short).empty
    shuffled = PlanContext(ctx.as_of, ctx.scores.sample(frac=1.0, random_state=1), ctx.closes,
                           ctx.current_weights)  # fmt: skip
    pd.testing.assert_series_equal(strat.target_weights(ctx), strat.target_weights(shuffled))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("top_n", {"n": True}),
        ("top_n", {"n": "5"}),
        ("top_n", {"n": 5.0}),
        ("top_n", {"min_score": False}),
        ("score_weighted", {"max_weight": True}),
        ("score_weighted", {"power": float("inf")}),
        ("score_weighted", {"power": float("nan")}),
        ("momentum", {"lookback": "126"}),
        ("momentum", {"skip": True}),
    ],
)
def test_params_are_strict(name, params):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        STRATEGIES[name].Params.model_validate(params)


def test_params_accept_integers_for_floats():
    p = STRATEGIES["score_weighted"].Params.model_validate({"n": 5, "max_weight": 1, "power": 2})
    assert (p.n, p.max_weight, p.power) == (5, 1.0, 2.0) and isinstance(p.power, float)


def _top_n_by_pandas(scores: pd.Series, n: int, min_score: float) -> pd.Series:
    """TopN's rule spelt in pandas: dropna, filter, sort by symbol, stable descending head(n)."""
    from strategies.base import equal_weight

    s = scores.dropna()
    s = s[s >= min_score]
    best = s.sort_index().sort_values(ascending=False, kind="stable").head(n)
    return equal_weight(list(best.index))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, np.nan]), st.floats(0, 1)),
             min_size=0, max_size=40),
    st.integers(1, 45),
    st.sampled_from([0.0, 0.25, 0.5]),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_top_n_equals_the_pandas_rule(values, n, min_score, rnd):
    """Ties (to the first symbol by name), NaN scores, the floor and n past the universe: the
    numpy selection is the pandas chain's, weights and order."""
    symbols = [f"S{i:02d}" for i in range(len(values))]
    rnd.shuffle(symbols)  # the universe is not sorted by name
    scores = pd.DataFrame({"blended_score": values}, index=pd.Index(symbols, dtype=object))
    ctx = PlanContext(date(2020, 2, 1), scores, pd.DataFrame(), pd.Series(dtype="float64"))
    strat = STRATEGIES["top_n"](STRATEGIES["top_n"].Params(n=n, min_score=min_score))
    expected = _top_n_by_pandas(scores["blended_score"], n, min_score)
    pd.testing.assert_series_equal(strat.target_weights(ctx), expected)
