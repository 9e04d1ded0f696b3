"""The numpy close block (a strategy's array path) is the close panel without pandas: the same
values, dates and symbols as ``get_close_panel``, behind the same as-of guard."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from sentinel.errors import LookAheadError


@pytest.mark.parametrize("end", [date(2015, 3, 2), date(2016, 6, 15), date(2017, 12, 29)])
def test_the_block_answers_as_the_panel_cached_or_not(pair, demo_universe, end):
    sql, cached = pair
    names = [*demo_universe.securities["symbol"].iloc[::2], "NOPE"]
    for store in (sql, cached):
        for kw in ({"days": 25}, {"days": 300, "symbols": names}, {"symbols": names[:3]}):
            block = store.market.get_close_block(end_date=end, **kw)
            panel = store.market.get_close_panel(end_date=end, **kw)
            pd.testing.assert_frame_equal(block.frame(), panel, check_freq=False)
    a = cached.market.get_close_block(days=25, end_date=end)
    b = sql.market.get_close_block(days=25, end_date=end)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert list(a.symbols) == list(b.symbols) and a.dates.equals(b.dates)


def test_the_block_keeps_the_as_of_guard(pair):
    for store in pair:
        view = store.view(date(2016, 1, 4))
        with pytest.raises(LookAheadError):
            view.market.get_close_block(days=5, end_date=date(2016, 1, 5))
        block = view.market.get_close_block(days=5)
        assert block.dates.max() == pd.Timestamp("2016-01-04")
