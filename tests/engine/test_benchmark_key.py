"""The market features follow the run's ``benchmark:`` key, not a hard-wired SPY."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from engine.config import RunConfig
from engine.session import build_session
from sentinel.data.importer import import_files
from sentinel.db import Store
from sentinel.ml.dataset import FeatureBook
from tests.conftest import make_demo_db


@pytest.fixture(scope="module")
def two_markets(tmp_path_factory):
    """The demo store (benchmark MARKET) plus a second benchmark ALT that falls when MARKET
    rises, and SPY, a copy of MARKET that the old code would have picked first."""
    folder = tmp_path_factory.mktemp("bench")
    path = make_demo_db(folder, 3, 4, "2015-01-01", "2016-06-30")
    store = Store(f"sqlite:///{path}")
    bars = store.market.get_benchmark("MARKET").reset_index()
    alt = bars.assign(symbol="ALT")
    for col in ("open", "high", "low", "close"):
        alt[col] = 1e4 / bars[col]
    alt["high"], alt["low"] = alt[["high", "low"]].max(axis=1), alt[["high", "low"]].min(axis=1)
    spy = bars.assign(symbol="SPY")
    for name, frame in (("alt", alt), ("spy", spy)):
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
        frame.to_csv(folder / f"{name}.csv", index=False)
        import_files(store, [folder / f"{name}.csv"], kind="benchmark")
    return store


def test_the_feature_book_reads_the_named_market(two_markets):
    spy = FeatureBook(two_markets)
    alt = FeatureBook(two_markets, market="ALT")
    assert spy.market_symbol == "SPY" and alt.market_symbol == "ALT"
    view = two_markets.view(date(2016, 6, 1))
    sym = spy.symbols[0]
    a = spy.panel_as_of([sym], view).loc[sym, "market_return_20d"]
    b = alt.panel_as_of([sym], view).loc[sym, "market_return_20d"]
    assert np.sign(a) == -np.sign(b) != 0  # ALT moves against the market


def test_the_session_routes_the_benchmark_key_to_the_features(two_markets):
    base = {"start": "2016-03-01", "end": "2016-06-30", "ml": {"enabled": True, "mode": "current"}}
    session = build_session(RunConfig.model_validate({**base, "benchmark": "ALT"}), two_markets)
    assert session.planner.book.market_symbol == "ALT"
    default = build_session(RunConfig.model_validate(base), two_markets)
    assert default.planner.book.market_symbol == "SPY"
