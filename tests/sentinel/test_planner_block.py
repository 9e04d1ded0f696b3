"""The planner's scores from its own close block equal those from the long bars, bit for bit.

``Planner.needs_bars`` is False: the runner no longer reads :meth:`Planner.history` (a long frame
per rebalance day) and :meth:`Planner.scores` reads the same trailing closes as a block through
the view. The frame, the stored wavelet scores and the regime quotes must not move, on days with
a late listing (fewer bars, NaN in the block) and days where every symbol has a full year.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from sentinel.errors import LookAheadError
from sentinel.ml.policy import MLPolicy
from sentinel.planner import LOOKBACK_DAYS, Analyzer, Planner
from sentinel.settings import Settings
from tests.future import scramble_after

DAYS = [date(2016, 6, 15), date(2016, 11, 15), date(2017, 3, 15)]


class _Book:
    """Features known by a view's day: a function of the symbol and the day only."""

    feature_names = ["f0", "f1"]

    def panel_as_of(self, symbols: list[str], view) -> pd.DataFrame:
        seed = view.day.toordinal()
        rows = {s: np.random.default_rng([seed, sum(map(ord, s))]).normal(size=2) for s in symbols}
        return pd.DataFrame.from_dict(rows, orient="index", columns=self.feature_names)


class _Predictor:
    """Returns of both signs (the regime dampening applies to half of them)."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols

    def predict_batch(self, rows: dict[str, np.ndarray]) -> dict[str, float]:
        return {s: float(0.03 * x[0] - 0.01 * x[1]) for s, x in rows.items()}


def _planner(store) -> Planner:
    policy = MLPolicy.from_settings(Settings(), mode="current", blend_ratio=0.4)
    symbols = sorted(store.market.universe_symbols(DAYS[-1]))
    return Planner(
        policy,
        universe=lambda d: store.market.universe_symbols(d),
        book=_Book(),
        predictor=_Predictor(symbols),
    )


def _same_frames(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for col in got.columns:  # to the bit (a -0.0 against a 0.0 fails here)
        if got[col].dtype == np.float64:
            a, b = got[col].to_numpy(), want[col].to_numpy()
            assert (a.view(np.int64) == b.view(np.int64)).all(), col


def test_planner_reads_no_long_bars() -> None:
    assert Planner.needs_bars is False


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("day", DAYS)
def test_block_scores_equal_the_long_bar_scores(demo_store, day: date, cached: bool) -> None:
    if cached:  # the run's path: reads answered from the preloaded price cache
        demo_store.market.preload()
    assert (demo_store.db.cache is not None) == cached
    planner = _planner(demo_store)
    view = demo_store.view(day)
    bars = planner.history(view, planner.universe(day))
    want = planner.scores(view, bars)
    want_stored = {s: demo_store.signals.get_score(s, day) for s in want.index}
    got = planner.scores(view)
    got_stored = {s: demo_store.signals.get_score(s, day) for s in got.index}
    _same_frames(got, want)
    assert got_stored == want_stored
    assert got["predicted_return"].notna().sum() >= 5  # the regime quotes were used
    assert (got["regime_dampening"] < 1).any()


def test_block_scores_ignore_bars_after_the_day(demo_store) -> None:
    day = DAYS[1]
    planner = _planner(demo_store)
    before = planner.scores(demo_store.view(day))
    with demo_store.db.transaction() as conn:
        scramble_after(demo_store, "prices", day, seed=5, conn=conn)
    _same_frames(planner.scores(demo_store.view(day)), before)
    later = date(2016, 11, 16)
    with pytest.raises(LookAheadError):  # the block read is behind the view's bound
        demo_store.view(day).market.get_close_block(None, days=LOOKBACK_DAYS, end_date=later)


def test_update_scores_takes_the_asked_symbols_of_any_close_panel(demo_store) -> None:
    """A caller's panel in another order, with a symbol not asked for, scores the same."""
    day = DAYS[2]
    view = demo_store.view(day)
    symbols = view.market.universe_symbols(day)
    want = Analyzer().update_scores(view, symbols[1:])
    closes = view.market.get_close_panel(symbols, days=LOOKBACK_DAYS, end_date=day)
    got = Analyzer().update_scores(view, symbols[1:], closes[closes.columns[::-1]])
    assert list(got) == list(want) and got == want
    assert symbols[0] not in got and len(got) >= len(symbols) - 3


def test_block_scores_equal_with_every_bar_present(demo_store) -> None:
    """A universe whose every symbol has every bar: the quotes' one-block path."""
    demo_store.market.preload()
    day = DAYS[2]
    view = demo_store.view(day)
    block = view.market.get_close_block(
        view.market.universe_symbols(day), days=LOOKBACK_DAYS, end_date=day
    )
    full = [s for j, s in enumerate(block.symbols) if np.isfinite(block.values[:, j]).all()]
    assert len(full) >= 5
    planner = _planner(demo_store)
    planner.universe = lambda d: full
    want = planner.scores(view, planner.history(view, full))
    _same_frames(planner.scores(view), want)
    assert want["predicted_return"].notna().all()


@pytest.mark.parametrize("cached", [False, True])
def test_an_empty_universe_scores_nothing_either_way(demo_store, cached: bool) -> None:
    if cached:
        demo_store.market.preload()
    planner = _planner(demo_store)
    planner.universe = lambda d: []
    view = demo_store.view(DAYS[1])
    got = planner.scores(view)
    assert got.empty
    pd.testing.assert_frame_equal(got, planner.scores(view, planner.history(view, [])))
