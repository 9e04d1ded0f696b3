"""The preloaded price cache answers exactly as the SQL path does, behind the same guard."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from sentinel.errors import LookAheadError
from tests.future import scramble_after


@pytest.mark.parametrize("end", [date(2015, 3, 2), date(2016, 6, 15), date(2017, 12, 29)])
def test_cached_reads_equal_sql_reads(pair, demo_universe, end):
    sql, cached = pair
    sym = demo_universe.securities["symbol"].iloc[-1]  # listed late
    for kw in ({"days": 30}, {"days": 400}, {"start_date": date(2015, 6, 1)}, {}):
        pd.testing.assert_frame_equal(
            sql.market.get_prices(sym, end_date=end, **kw),
            cached.market.get_prices(sym, end_date=end, **kw),
        )
    for kw in ({"days": 20}, {"start_date": date(2016, 1, 1)}):
        pd.testing.assert_frame_equal(
            sql.market.get_price_panel(end_date=end, **kw),
            cached.market.get_price_panel(end_date=end, **kw),
        )
    two = list(demo_universe.securities["symbol"].iloc[:2])
    pd.testing.assert_frame_equal(
        sql.market.get_price_panel(two, days=15, end_date=end),
        cached.market.get_price_panel(two, days=15, end_date=end),
    )
    pd.testing.assert_frame_equal(
        sql.market.get_close_panel(days=25, end_date=end),
        cached.market.get_close_panel(days=25, end_date=end),
        check_freq=False, check_column_type=False,
    )  # fmt: skip
    assert sql.market.trading_days(end=end) == cached.market.trading_days(end=end)
    assert sql.market.universe_symbols(end) == cached.market.universe_symbols(end)


def test_cache_keeps_the_guard_and_is_dropped_on_write(pair):
    _, cached = pair
    view = cached.view(date(2016, 1, 4))
    assert view.db.cache is cached.db.cache
    with pytest.raises(LookAheadError):
        view.market.get_close_panel(days=5, end_date=date(2016, 1, 5))
    with pytest.raises(LookAheadError):
        view.market.get_prices("DAA", end_date=date(2016, 1, 5))
    assert view.market.get_price_panel(days=3)["date"].max() == pd.Timestamp("2016-01-04")
    with cached.db.transaction() as conn:
        scramble_after(cached, "prices", "2016-01-04", 1, conn)
    assert cached.db.cache is None and view.db.cache is None


def test_the_whole_table_read_in_chunks_equals_one_read(demo_store, monkeypatch):
    """The preload reads the price table a chunk at a time (peak memory); the frame is the same
    as one read, whatever the chunk size (997 splits symbols mid-history)."""
    from sentinel.db import market

    view = market.MarketView(demo_store.db, None)
    monkeypatch.setattr(market, "PANEL_CHUNK", 10**9)
    whole = view._panel_sql(None, None, None, None)
    monkeypatch.setattr(market, "PANEL_CHUNK", 997)
    chunked = view._panel_sql(None, None, None, None)
    assert len(whole) > 3 * 997
    pd.testing.assert_frame_equal(chunked, whole)
    sql = "SELECT date, symbol FROM prices ORDER BY symbol, date"
    assert list(zip(chunked["date"].dt.strftime("%Y-%m-%d"), chunked["symbol"], strict=True)) == [
        tuple(r) for r in demo_store.db.rows(sql)
    ]
