"""The day loop's array paths give exactly what the per-symbol ones give.

The runner marks the book with one gather of the feed's closes (``Closes.take``), finds held
symbols without a bar the same way, and the ledger builds its frames column-wise; each is checked
here against the plain per-symbol computation on random books, to the last bit.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from engine.corporate_actions import without_bar
from engine.feed import DayBars
from engine.portfolio import Fill, Portfolio

SYMS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
D0 = date(2020, 1, 6)


def _bars(closes: list[float]) -> DayBars:
    col = {s: j for j, s in enumerate(SYMS)}
    arr = np.array(closes, dtype="float64")
    return DayBars(SYMS, col, arr.copy(), arr)


def _valid(x: float) -> bool:
    return 0.0 < x < float("inf")


price = hs.one_of(hs.floats(0.5, 500.0), hs.just(float("nan")), hs.just(0.0), hs.just(-1.0))


@settings(max_examples=60, deadline=None)
@given(
    days=hs.lists(hs.lists(price, min_size=5, max_size=5), min_size=1, max_size=8),
    trades=hs.lists(
        hs.tuples(hs.integers(0, 7), hs.sampled_from(SYMS), hs.floats(0.1, 50.0)), max_size=12
    ),
)
def test_marking_with_the_feed_equals_marking_symbol_by_symbol(days, trades):
    fast, slow = Portfolio(cash=10_000.0), Portfolio(cash=10_000.0)
    for i, closes in enumerate(days):
        day = D0 + timedelta(days=i)
        for k, (when, sym, qty) in enumerate(trades):
            if when == i:
                fill = Fill(f"o{k}", day, sym, qty, 10.0 + k, 0.5, 0.0)
                fast.apply(fill)
                slow.apply(fill)
        plain = {s: c for s, c in zip(SYMS, closes, strict=True) if _valid(c)}
        assert fast.mark(day, _bars(closes).closes()) == slow.mark(day, plain)
        assert fast.last_price == slow.last_price
    assert fast.equity_rows == slow.equity_rows
    reference = pd.DataFrame.from_dict(slow.weight_rows, orient="index").fillna(0.0)
    reference.index = pd.to_datetime(reference.index)
    reference.index.name = "date"
    pd.testing.assert_frame_equal(
        fast.weights_frame(), reference.sort_index(axis=1), check_exact=True,
        check_column_type=False,
    )  # fmt: skip


def test_take_is_nan_exactly_where_get_is_none():
    closes = _bars([10.0, float("nan"), 0.0, -3.0, float("inf")]).closes()
    asked = ["EEE", "AAA", "ZZZ", "BBB", "CCC", "DDD", "AAA"]
    got = closes.take(asked)
    for sym, value in zip(asked, got.tolist(), strict=True):
        expected = closes.get(sym)
        assert (value == expected) if expected is not None else np.isnan(value)
    assert got.tolist()[1] == 10.0
    assert closes.take(asked) is got and not got.flags.writeable  # kept, and read-only
    with pytest.raises(ValueError):
        got[0] = 1.0
    assert closes.take(["AAA"]).tolist() == [10.0]  # another question: answered afresh


def test_a_day_without_bars_has_no_closes():
    empty = DayBars([], {}, np.empty(0), np.empty(0)).closes()
    assert np.isnan(empty.take(["AAA", "BBB"])).all()
    assert without_bar(["AAA", "BBB"], empty) == ["AAA", "BBB"]


def test_held_symbols_without_a_bar_are_found_either_way():
    closes = _bars([10.0, float("nan"), 5.0, 0.0, 7.0]).closes()
    held = ["DDD", "AAA", "BBB", "QQQ"]
    plain = {s: v for s in SYMS if (v := closes.get(s)) is not None}
    assert without_bar(held, closes) == without_bar(held, plain) == ["DDD", "BBB", "QQQ"]
    assert without_bar(["AAA", "CCC"], closes) == []


def test_trades_frame_has_one_row_per_fill_in_order():
    book = Portfolio(cash=1_000.0)
    fills = [Fill("a", D0, "AAA", 3.0, 10.0, 0.5, 0.25),
             Fill("b", D0 + timedelta(days=1), "AAA", -1.5, 12.0, 0.25, 0.0)]  # fmt: skip
    for f in fills:
        book.apply(f)
    df = book.trades_frame()
    assert df["side"].tolist() == ["buy", "sell"]
    assert df["quantity"].tolist() == [3.0, 1.5]
    assert df["value"].tolist() == [30.0, 18.0]
    assert df["order_id"].tolist() == ["a", "b"]
    assert df["date"].tolist() == [pd.Timestamp(D0), pd.Timestamp(D0 + timedelta(days=1))]
    assert list(Portfolio(cash=1.0).trades_frame().columns) == list(df.columns)
