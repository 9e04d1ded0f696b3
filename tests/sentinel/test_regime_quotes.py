"""The batched regime quotes equal the per-symbol summary to the bit.

:func:`sentinel.regime.quote_data_panel` (long bars) and :func:`sentinel.regime.quote_data_block`
(a wide close block) summarise the symbols with a full year of closes row-wise in numpy; the
reference is :func:`sentinel.regime.quote_data_from_prices` per symbol (one pandas frame each),
compared by ``repr`` so that a -0.0 or a last-bit difference fails, not only a different value.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.errors import LookAheadError
from sentinel.regime import quote_data_block, quote_data_from_prices, quote_data_panel

DAY = date(2017, 3, 15)


def _reference(bars: pd.DataFrame, symbols: list[str]) -> dict:
    return {
        s: quote_data_from_prices(g.set_index("date"))
        for s, g in bars[bars["symbol"].isin(symbols)].groupby("symbol")
    }


def _series(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "flat":  # high == low: the 52-week position's 0.5 branch
        return np.full(n, rng.uniform(1, 100))
    if kind == "steps":
        return np.repeat(rng.uniform(1, 100, n // 5 + 1), 5)[:n]
    scale = rng.choice([1e-6, 1.0, 1e6])
    return scale * 50 * np.exp(np.cumsum(rng.normal(0, rng.uniform(0.001, 0.08), n)))


@st.composite
def _bars(draw) -> pd.DataFrame:
    """Long bars of a few symbols: full years and short histories, holes, bad closes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    lengths = draw(
        st.lists(st.sampled_from([0, 1, 20, 21, 200, 251, 252, 253, 300]), min_size=1, max_size=6)
    )
    dates = pd.bdate_range("2019-01-01", periods=320)
    if draw(st.booleans()):  # one calendar, a full year each, clean: the block's fast path
        n = draw(st.integers(252, 320))
        frame = pd.DataFrame({f"S{k}": _series(rng, "walk", n) for k in range(len(lengths))},
                             index=dates[:n])  # fmt: skip
        bars = frame.rename_axis("date").melt(ignore_index=False, var_name="symbol",
                                              value_name="close").reset_index()  # fmt: skip
        bars["open"] = bars["high"] = bars["low"] = bars["close"]
        bars["volume"] = 1e6
        return bars
    parts = []
    for k, n in enumerate(lengths):
        kind = draw(st.sampled_from(["walk", "flat", "steps"]))
        close = _series(rng, kind, n)
        if n and draw(st.booleans()):  # NaN runs, zero and negative closes inside the history
            bad = rng.random(n) < 0.1
            close[bad] = rng.choice([np.nan, 0.0, -1.0, np.inf], int(bad.sum()))
            if n > 30:
                close[5:15] = np.nan
        at = np.sort(rng.choice(len(dates), n, replace=False))  # gaps in the calendar
        parts.append(pd.DataFrame({"date": dates[at], "symbol": f"S{k}", "close": close}))
    bars = pd.concat(parts, ignore_index=True)
    bars["open"] = bars["high"] = bars["low"] = bars["close"]
    bars["volume"] = 1e6
    return bars


def _wide(bars: pd.DataFrame) -> pd.DataFrame:
    """The close block a cache read gives for these bars (dates with no close dropped)."""
    wide = bars.pivot(index="date", columns="symbol", values="close")
    return wide[wide.notna().any(axis=1)].loc[:, wide.notna().any(axis=0)]


@settings(max_examples=60, deadline=None)
@given(_bars())
def test_quote_panel_and_block_equal_the_per_symbol_summary_to_the_bit(bars) -> None:
    symbols = sorted(bars["symbol"].unique())
    want = _reference(bars, symbols)
    assert repr(quote_data_panel(bars, symbols)) == repr(want)
    wide = _wide(bars)
    block = quote_data_block(wide.to_numpy(), wide.index, wide.columns, symbols)
    with_close = {s for s in symbols if bars.loc[bars["symbol"] == s, "close"].notna().any()}
    assert repr(block) == repr({s: q for s, q in want.items() if s in with_close})


def test_only_the_wanted_symbols_are_summarised() -> None:
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2020-01-01", periods=260)
    wide = pd.DataFrame(50 * np.exp(rng.normal(0, 0.02, (260, 3)).cumsum(0)), index=dates,
                        columns=["A", "B", "C"])  # fmt: skip
    got = quote_data_block(wide.to_numpy(), wide.index, wide.columns, ["C", "A", "Z"])
    assert list(got) == ["A", "C"]
    assert got["A"]["n_days"] == 260 and got["A"]["date"] == str(dates[-1].date())
    assert got["C"]["price"] == wide["C"].iloc[-1]
    assert quote_data_block(wide.to_numpy(), wide.index, wide.columns, []) == {}


def test_block_quotes_equal_the_panel_quotes_on_store_bars(demo_store) -> None:
    view = demo_store.view(DAY)
    symbols = view.market.universe_symbols(DAY)
    bars = view.market.get_price_panel(symbols, days=260, end_date=DAY)
    block = view.market.get_close_block(symbols, days=260, end_date=DAY)
    got = quote_data_block(block.values, block.dates, block.symbols, symbols[1:])
    assert len(got) == len(symbols) - 1
    assert repr(got) == repr(quote_data_panel(bars, symbols[1:]))
    assert repr(got) == repr(_reference(bars, symbols[1:]))
    with pytest.raises(LookAheadError):  # the block read is behind the view's bound
        view.market.get_close_block(symbols, days=260, end_date=date(2017, 3, 16))
