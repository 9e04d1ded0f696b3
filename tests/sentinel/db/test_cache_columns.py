"""The cache's memoised columns: the same answers as the SQL path, and nothing shared that a
caller could change for the next reader."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest


@pytest.mark.parametrize("end", [date(2015, 2, 2), date(2016, 6, 15), date(2017, 12, 29)])
def test_stale_symbols_and_the_universe_equal_the_sql_path(pair, demo_universe, end):
    sql, cached = pair
    names = [*demo_universe.securities["symbol"], "NOPE"]  # one the store has no bars for
    for sessions in (1, 5, 15):  # windows inside the data (before its start the paths differ)
        assert sql.market.stale_symbols(names, end, sessions) == cached.market.stale_symbols(
            names, end, sessions
        )
        assert sql.market.universe_symbols(end, stale_after=sessions) == (
            cached.market.universe_symbols(end, stale_after=sessions)
        )
    assert "NOPE" in cached.market.stale_symbols(names, end, 5)
    assert [s.symbol for s in sql.market.securities()] == [
        s.symbol for s in cached.market.securities()
    ]


def test_close_panels_do_not_share_labels_a_caller_can_rename(pair, demo_universe):
    _, cached = pair
    names = list(demo_universe.securities["symbol"])
    first = cached.market.get_close_panel(names, days=20, end_date=date(2016, 6, 15))
    first.columns.name = "changed"
    again = cached.market.get_close_panel(names, days=20, end_date=date(2016, 6, 15))
    assert again.columns.name == "symbol"
    pd.testing.assert_frame_equal(first.rename_axis(columns="symbol"), again)
    # a symbol with no bars is left out, as the SQL path leaves it out
    with_unknown = cached.market.get_close_panel([*names, "NOPE"], days=20,
                                                 end_date=date(2016, 6, 15))  # fmt: skip
    pd.testing.assert_frame_equal(with_unknown, again)
