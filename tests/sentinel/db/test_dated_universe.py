"""The universe as of a day: symbols whose bars stopped leave; listings and index spans count."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.data.importer import import_files


@pytest.fixture
def gappy(store, tmp_path):
    """AAA trades every day of January 2020; BBB stops after 01-03 (no bar since)."""
    days = [date(2020, 1, d) for d in (2, 3, 6, 7, 8, 9, 10, 13, 14)]
    rows = [f"{d},AAA,10,11,9,10,100" for d in days] + [f"{d},BBB,5,6,4,5,100" for d in days[:2]]
    path = tmp_path / "bars.csv"
    path.write_text("date,symbol,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    import_files(store, [path])
    return store


@pytest.mark.parametrize("cached", [False, True])
def test_a_symbol_without_a_bar_for_n_sessions_leaves_the_universe(gappy, cached):
    if cached:
        gappy.market.preload()
    m = gappy.market
    assert m.universe_symbols(date(2020, 1, 7), stale_after=3) == ["AAA", "BBB"]  # 2 sessions
    assert m.universe_symbols(date(2020, 1, 8), stale_after=3) == ["AAA"]  # 3 sessions: gone
    assert m.universe_symbols(date(2020, 1, 14)) == ["AAA", "BBB"]  # no rule: stays (survivor)
    view = gappy.view(date(2020, 1, 8)).market
    assert view.universe_symbols(stale_after=3) == ["AAA"]


def test_listing_and_membership_spans_are_read_as_of_the_day(gappy, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("index,symbol,from,to\nSP,AAA,2020-01-06,\nSP,BBB,2019-01-01,2020-01-06\n")
    listings = tmp_path / "l.csv"
    listings.write_text("symbol,from,to\nAAA,2019-12-02,2020-01-07\n")
    import_files(gappy, [path, listings])
    m = gappy.market
    assert m.index_members("SP", date(2020, 1, 3)) == ["BBB"]
    assert m.index_members("SP", date(2020, 1, 6)) == ["AAA", "BBB"]
    assert m.index_members("SP", date(2020, 1, 7)) == ["AAA"]
    assert m.universe_symbols(date(2020, 1, 7)) == ["AAA", "BBB"]
    assert m.universe_symbols(date(2020, 1, 8)) == ["BBB"]  # AAA's listing ended (bars or not)
    assert gappy.view(date(2020, 1, 3)).market.listed() == ({"AAA"}, {"AAA"})


SPANS = (
    "symbol,from,to\nAAA,2020-01-02,2020-01-08\nAAA,2020-01-10,\n",  # BBB: no listing
    "index,symbol,from,to\nSP,AAA,2020-01-02,2020-01-09\nSP,BBB,2020-01-07,\n",
    "symbol,sector,from,to\nAAA,Energy,2020-01-02,2020-01-07\nAAA,Utilities,2020-01-08,\n",
)
TABLES = {  # table: (key column, from column, to column)
    "listings": ("symbol", "listed_from", "listed_to"),
    "index_membership": ("symbol", "valid_from", "valid_to"),
    "sector_history": ("symbol", "valid_from", "valid_to"),
}


def _dated_reads(store, t: date) -> tuple:
    view = store.view(t).market
    return (
        view.universe_symbols(),
        view.universe_symbols(sector="Utilities"),
        view.index_members("SP"),
        view.sectors_as_of(),
        view.listed(),
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    t_day=st.sampled_from([2, 3, 6, 7, 8, 9, 10, 13]),
    mode=st.sampled_from(["add", "delete", "retime"]),
    shift=st.integers(1, 30),
)
def test_spans_after_t_change_nothing_up_to_t(gappy, tmp_path, t_day, mode, shift):
    from sqlalchemy import text

    t = date(2020, 1, t_day)
    files = [tmp_path / f"span{i}.csv" for i in range(3)]
    for path, body in zip(files, SPANS, strict=True):
        path.write_text(body)
    with gappy.db.transaction() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    import_files(gappy, files)
    before = _dated_reads(gappy, t)
    later = date.fromordinal(t.toordinal() + shift).isoformat()
    d = {"t": t.isoformat(), "later": later}
    with gappy.db.transaction() as conn:
        for table, (_, start, end) in TABLES.items():
            if mode == "delete":
                conn.execute(text(f"DELETE FROM {table} WHERE {start} > :t"), d)
            elif mode == "retime":  # an end after t moves, still after t
                conn.execute(text(f"UPDATE {table} SET {end} = :later WHERE {end} > :t"), d)
        if mode == "add":
            conn.execute(
                text("INSERT INTO listings VALUES ('BBB', :later, NULL, 'relisted', 1)"), d
            )
            conn.execute(text("INSERT INTO index_membership VALUES ('SP', 'AAA', :later, NULL)"), d)
            conn.execute(text("INSERT INTO sector_history VALUES ('BBB', :later, NULL, 'X')"), d)
    assert _dated_reads(gappy, t) == before
