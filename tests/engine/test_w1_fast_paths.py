"""The W1 speed-ups keep every answer: deciders that skip the book's weights, the feed's
per-feed column memo and read-only tape, immutable ledger records, the gap count by binary
search, and the top-N without a full sort."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.broker import SimulatedBroker
from engine.calendar import data_gaps, sessions
from engine.clock import EventType, Tick
from engine.config import CostsConfig
from engine.feed import BarFeed
from engine.portfolio import Fill, Order, Portfolio
from engine.runner import Runner
from strategies.rules import top


class WeightsSeen:
    """A decider that buys one symbol and records the ``current_weights`` it was handed."""

    def __init__(self, symbol: str, needs_weights: bool | None):
        self.symbol = symbol
        if needs_weights is not None:
            self.needs_weights = needs_weights
        self.seen: list[pd.Series] = []

    def retrain(self, view) -> None:
        pass

    def plan(self, view, current_weights: pd.Series) -> pd.Series:
        self.seen.append(current_weights.copy())
        return pd.Series({self.symbol: 0.5})


def _run(store, decider) -> Portfolio:
    days = store.market.trading_days(date(2016, 3, 1), date(2016, 3, 10))
    ticks = [Tick(d, (EventType.REBALANCE,) if i in (1, 4) else ()) for i, d in enumerate(days)]
    portfolio = Portfolio(cash=100_000.0)
    Runner(run_id="t", store=store, clock=ticks, broker=SimulatedBroker(CostsConfig()),
           feed=BarFeed(store, None, days[0], days[-1]), decider=decider,
           portfolio=portfolio).run()  # fmt: skip
    return portfolio


@pytest.mark.parametrize("needs", [None, True])
def test_a_decider_that_reads_the_weights_gets_the_book(demo_store, needs):
    sym = demo_store.market.universe_symbols(date(2016, 3, 1))[0]
    decider = WeightsSeen(sym, needs)
    _run(demo_store, decider)
    assert decider.seen[0].empty  # nothing held at the first rebalance
    assert list(decider.seen[1].index) == [sym] and 0.4 < decider.seen[1][sym] < 0.6


def test_a_decider_that_does_not_read_them_gets_an_empty_series_and_the_same_book(demo_store):
    sym = demo_store.market.universe_symbols(date(2016, 3, 1))[0]
    skip, read = WeightsSeen(sym, False), WeightsSeen(sym, True)
    a, b = _run(demo_store, skip), _run(demo_store, read)
    assert all(w.empty and w.dtype == np.float64 for w in skip.seen)
    assert a.equity_rows == b.equity_rows and a.fills == b.fills


def test_ledger_records_are_immutable():
    order = Order("r:2016-03-01:AAA", "AAA", 3.0, date(2016, 3, 1))
    fill = Fill(order.order_id, date(2016, 3, 2), "AAA", 3.0, 10.0, 1.0, 0.0)
    with pytest.raises(AttributeError):
        order.quantity = 5.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        fill.price = 1.0  # type: ignore[misc]
    assert order._replace(quantity=6.0).quantity == 6.0 and order.quantity == 3.0
    assert fill.value == 30.0


def test_the_feed_tape_is_read_only_and_its_column_memo_answers_every_day(demo_store):
    days = demo_store.market.trading_days(date(2016, 3, 1), date(2016, 3, 10))
    feed = BarFeed(demo_store, None, days[0], days[-1])
    syms = demo_store.market.universe_symbols(days[0])[:3] + ["NOPE"]
    for day in days:  # the same symbols every day: the memo's columns, today's closes
        closes = feed.advance(day).closes()
        got = closes.take(syms)
        want = [closes.get(s) for s in syms]
        assert [None if np.isnan(x) else x for x in got.tolist()] == want
        with pytest.raises(ValueError):
            got[0] = 1.0
    with pytest.raises(ValueError):
        feed._open[0, 0] = 1.0  # a view on the store's cache: never written through


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.0, 2.0, 1e-9]), max_size=40)
       | st.lists(st.floats(-1e6, 1e6), max_size=40), st.integers(1, 45))  # fmt: skip
def test_top_is_the_head_of_a_stable_descending_sort(values, n):
    v = np.array(values, dtype=float)
    assert np.array_equal(top(v, n), np.argsort(-v, kind="stable")[:n])


def _gaps_by_loop(sess, dates, close, symbols, listed):
    """The definition, one session and one symbol at a time."""
    on_file = {d: i for i, d in enumerate(dates.tolist())}
    any_bar = {d: d in on_file and not np.isnan(close[on_file[d]]).all() for d in sess}
    counts = {}
    for sym, first, last in listed:
        if first is None:
            continue
        hi = sess[-1] if last is None else last
        j = symbols.index(sym) if sym in symbols else -1
        n = sum(1 for d in sess if first <= d <= hi and any_bar[d]
                and (j < 0 or np.isnan(close[on_file[d], j])))  # fmt: skip
        if n:
            counts[sym] = n
    return sum(not v for v in any_bar.values()), counts


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_gap_counts_match_the_definition(data):
    sess = sessions("XNYS", date(2016, 1, 4), date(2016, 3, 31))
    keep = data.draw(st.lists(st.booleans(), min_size=len(sess), max_size=len(sess)).filter(any))
    dates = np.array([d for d, k in zip(sess, keep, strict=True) if k], dtype="datetime64[D]")
    symbols = ["AAA", "BBB", "CCC"]
    seed = data.draw(st.integers(0, 2**16))
    close = np.where(np.random.default_rng(seed).random((len(dates), 3)) < 0.85, 1.0, np.nan)
    day = st.integers(-20, len(sess) + 20).map(lambda k: sess[0] + timedelta(days=k * 1.4))
    listed = [(s, data.draw(st.none() | day), data.draw(st.none() | day))
              for s in symbols + ["ZZZ"]]  # fmt: skip
    line = data_gaps("XNYS", sess[0], sess[-1], dates, close, symbols, listed)
    empty, counts = _gaps_by_loop(sess, dates, close, symbols, listed)
    if not empty and not counts:
        assert line is None
        return
    assert line is not None
    if empty:
        assert f"{empty} XNYS session(s) without any bar" in line
    if counts:
        assert f"{sum(counts.values())} missing bar(s) of {len(counts)} listed symbol(s)" in line
