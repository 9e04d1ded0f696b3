"""The cache's panel skips its scan for gaps only when no symbol misses a bar (prefix counts), and
its end row comes from a dict of the loaded dates: both answer as the definitions do."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.db.cache import PriceCache

DATES = np.array([date(2020, 1, 1) + timedelta(days=k) for k in range(0, 40, 2)],
                 dtype="datetime64[D]")  # fmt: skip
SYMS = ["AAA", "BBB", "CCC", "DDD"]


def _cache(close: np.ndarray) -> PriceCache:
    index = pd.DatetimeIndex(DATES.astype("datetime64[ns]"), name="date")
    return PriceCache(DATES, index, SYMS, {s: j for j, s in enumerate(SYMS)}, {"close": close}, [])


def _panel_by_definition(close: np.ndarray, rows: slice, names: list[str]) -> pd.DataFrame:
    known = [s for s in names if s in SYMS]
    df = pd.DataFrame(close[rows][:, [SYMS.index(s) for s in known]],
                      index=pd.DatetimeIndex(DATES[rows].astype("datetime64[ns]"), name="date"),
                      columns=pd.Index(known, dtype=object, name="symbol"))  # fmt: skip
    return df.dropna(how="all").dropna(axis=1, how="all")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.booleans(), min_size=len(DATES) * 4, max_size=len(DATES) * 4),
       st.integers(0, len(DATES)), st.integers(0, len(DATES)),
       st.lists(st.sampled_from([*SYMS, "ZZZ"]), unique=True, max_size=5))  # fmt: skip
def test_the_panel_equals_its_definition(gaps, lo, hi, names):
    close = np.arange(len(DATES) * 4, dtype=float).reshape(len(DATES), 4) + 1.0
    if any(gaps[::3]):  # about half the cases have no gap at all (the fast path)
        close[np.array(gaps).reshape(len(DATES), 4)] = np.nan
    rows = slice(min(lo, hi), max(lo, hi))
    cache = _cache(close)
    got = cache.wide("close", rows, names)
    want = _panel_by_definition(close, rows, names)
    pd.testing.assert_frame_equal(got, want, check_freq=False)
    # the numpy block (a strategy's array path) is the same panel without pandas
    pd.testing.assert_frame_equal(cache.block("close", rows, names).frame(), got)
    assert cache.block("close", slice(0, 5), SYMS).symbols.name == "symbol"


@settings(max_examples=100, deadline=None)
@given(st.integers(-5, 45))
def test_end_row_is_a_binary_search_of_the_dates(k):
    cache = _cache(np.ones((len(DATES), 4)))
    day = date(2020, 1, 1) + timedelta(days=k)
    want = int(np.searchsorted(DATES, np.datetime64(day, "D"), side="right"))
    assert cache.end_row(day) == want
    assert cache.end_row(None) == len(DATES)
