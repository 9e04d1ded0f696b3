"""The numpy return figures equal vectorbt's returns accessor to the bit (vectorbt stays the
definition; :mod:`engine.returns_figures` only avoids importing it in every run)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.returns_figures import ReturnFigures


@pytest.fixture(scope="module", autouse=True)
def _vectorbt() -> None:
    """vectorbt (which registers ``Series.vbt``) is imported when these tests run, not when the
    module is collected: every xdist worker collects every module, one of them runs these."""
    pytest.importorskip("vectorbt")


FIGURES = ("total", "annualized", "annualized_volatility", "sharpe_ratio", "sortino_ratio",
           "max_drawdown", "calmar_ratio")  # fmt: skip


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _assert_equal_to_vectorbt(values: np.ndarray, periods: int) -> None:
    series = pd.Series(values, index=pd.date_range("2020-01-01", periods=len(values), freq="D"))
    acc = series.vbt.returns(freq="1D", year_freq=f"{periods}D")
    ours = ReturnFigures(values, float(periods))
    for name in FIGURES:
        want, got = float(getattr(acc, name)()), getattr(ours, name)()
        assert _same(got, want), (name, got, want)


@st.composite
def _returns(draw) -> np.ndarray:
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    kind = draw(st.sampled_from(["normal", "flat", "zeros", "gains", "crash", "nan"]))
    if kind == "flat":
        return np.full(n, draw(st.floats(-0.01, 0.01)))
    if kind == "zeros":
        return np.zeros(n)
    if kind == "gains":  # no downside, no drawdown: inf Sortino, NaN Calmar
        return rng.uniform(0, 0.02, n)
    out = rng.normal(draw(st.floats(-0.002, 0.002)), draw(st.floats(1e-6, 0.05)), n)
    if kind == "crash":
        out[rng.integers(0, n)] = -1.0  # a total loss: value 0, then 0 / 0 drawdowns
    if kind == "nan":
        out[rng.random(n) < 0.2] = np.nan
    return out


@settings(max_examples=200, deadline=None)
@given(_returns(), st.sampled_from([252, 365, 12]))
def test_every_figure_equals_vectorbts_to_the_bit(values: np.ndarray, periods: int) -> None:
    _assert_equal_to_vectorbt(values, periods)


def test_a_real_equity_curve_gives_vectorbts_figures() -> None:
    rng = np.random.default_rng(11)
    equity = 1e5 * np.cumprod(1 + rng.normal(3e-4, 0.012, 1258))
    _assert_equal_to_vectorbt(pd.Series(equity).pct_change().to_numpy()[1:], 252)
