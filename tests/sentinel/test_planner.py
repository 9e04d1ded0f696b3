"""Analyzer.update_scores and Security.get_score on a simulation view: as-of, and loud past it."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from sentinel.errors import LookAheadError
from sentinel.planner import Analyzer, Security
from sentinel.timeutil import end_of_day_ts
from sentinel.wavelet import WINDOW, wavelet_as_of
from tests.future import scramble_after

D1 = date(2016, 6, 15)  # one late listing has < WINDOW bars, one is not listed yet
D2 = date(2016, 11, 15)  # the first late listing now has WINDOW bars


def _closes(demo_universe) -> dict[str, pd.Series]:
    return {sym: g.set_index("date")["close"] for sym, g in demo_universe.prices.groupby("symbol")}


def _expected_symbols(demo_universe, d: date) -> set[str]:
    """Universe members on ``d`` with at least ``WINDOW`` bars up to ``d``."""
    secs = demo_universe.securities
    ts = pd.Timestamp(d)
    listed = secs[
        (secs["universe_from"] <= ts) & (secs["universe_to"].isna() | (secs["universe_to"] >= ts))
    ]
    closes = _closes(demo_universe)
    return {s for s in listed["symbol"] if len(closes[s].loc[:ts]) >= WINDOW}


def test_update_scores_stores_one_as_of_score_per_symbol(demo_store, demo_universe) -> None:
    view = demo_store.view(D1)
    records = Analyzer().update_scores(view)
    expected = _expected_symbols(demo_universe, D1)
    universe = set(view.market.universe_symbols())
    assert set(records) == expected and universe - expected  # someone listed is too short
    assert len(universe) < len(demo_universe.securities)  # someone is not listed yet
    assert demo_store.db.count("wavelet_scores") == len(expected)
    closes = _closes(demo_universe)
    for sym, rec in records.items():
        assert rec.as_of == D1 and rec.calculated_at == end_of_day_ts(D1)
        want = wavelet_as_of(closes[sym], D1)
        assert rec.score == pytest.approx(want.score, abs=1e-12)
        assert rec.components["wavelet_d1"] == pytest.approx(want.d1, abs=1e-12)
        assert rec.components["wavelet_d4"] == pytest.approx(want.d4, abs=1e-12)
        stored = view.signals.get_score(sym)
        assert stored.score == rec.score and stored.calculated_at == end_of_day_ts(D1)


def test_security_get_score_is_as_of_and_refuses_the_future(demo_store, demo_universe) -> None:
    analyzer = Analyzer()
    for d in (D1, D2):
        analyzer.update_scores(demo_store.view(d))
    closes = _closes(demo_universe)
    sym = sorted(_expected_symbols(demo_universe, D1))[0]
    s1, s2 = (wavelet_as_of(closes[sym], d).score for d in (D1, D2))
    assert s1 != pytest.approx(s2)  # the two days are distinguishable

    view = demo_store.view(D1)  # scores of D2 are stored, but D2 is the future now
    sec = Security(view, sym)
    assert sec.get_score() == pytest.approx(s1, abs=1e-12)
    assert sec.get_score(as_of_date=D1) == pytest.approx(s1, abs=1e-12)
    assert sec.get_score(as_of_date=date(2016, 6, 14)) is None  # before any score
    assert sec.get_score(as_of_date=end_of_day_ts(D1) - 1) is None  # Unix seconds, same day
    with pytest.raises(LookAheadError):
        sec.get_score(as_of_date=date(2016, 6, 16))
    with pytest.raises(LookAheadError):  # the closes the analyzer would need for D2
        view.market.get_close_panel([sym], days=WINDOW + 5, end_date=D2)
    with pytest.raises(AttributeError):  # "now" of a view cannot be moved, only a new view made
        view.day = D2  # type: ignore[misc]

    sec = Security(demo_store.view(D2), sym)
    assert sec.get_score(as_of_date=date(2016, 8, 1)) == pytest.approx(s1, abs=1e-12)
    assert sec.get_score(as_of_date=D2) == pytest.approx(s2, abs=1e-12)
    assert sec.get_score() == pytest.approx(s2, abs=1e-12)
    short = sorted(_expected_symbols(demo_universe, D2) - _expected_symbols(demo_universe, D1))
    assert short  # newly rankable at D2: no score as of D1, a score as of D2
    assert Security(demo_store.view(D2), short[0]).get_score(as_of_date=D1) is None
    assert Security(demo_store.view(D2), short[0]).get_score(as_of_date=D2) is not None


def test_scores_ignore_bars_after_the_simulation_date(demo_store, demo_universe) -> None:
    """Scrambling every bar after D1 changes nothing computed as of D1."""
    view = demo_store.view(D1)
    before = {s: r.score for s, r in Analyzer().update_scores(view).items()}
    with demo_store.db.transaction() as conn:
        scramble_after(demo_store, "prices", D1, seed=3, conn=conn)
    after = {s: r.score for s, r in Analyzer().update_scores(view).items()}
    assert after == before
    sym = sorted(before)[0]
    scrambled = demo_store.market.get_prices(
        sym, start_date=date(2016, 6, 16), end_date=date(2016, 6, 22)
    )
    original = _closes(demo_universe)[sym].loc["2016-06-16":"2016-06-22"]
    assert len(original) == 5
    assert (scrambled["close"].to_numpy() != original.to_numpy()).all()  # the scramble happened
