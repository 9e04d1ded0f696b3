"""Actions, listings, sector histories and index membership: import rules and safe re-imports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sentinel.data.importer import import_files
from sentinel.errors import DataImportError

BARS = "date,symbol,open,high,low,close,volume\n" + "\n".join(
    [
        "2020-01-02,AAA,100,101,99,100,1000",
        "2020-01-03,AAA,100,101,99,100,1000",
        "2020-01-06,AAA,50,51,49,50,2000",
        "2020-01-02,BBB,20,21,19,20,500",
        "2020-01-03,BBB,20,21,19,20,500",
    ]
)
TABLES = ("prices", "corporate_actions", "listings", "sector_history", "index_membership")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


def _snapshot(store) -> dict[str, list[tuple]]:
    return {t: store.db.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in TABLES}


@pytest.fixture
def loaded(store, tmp_path):
    import_files(store, [_write(tmp_path, "bars.csv", BARS)])
    return store


def test_actions_and_histories_import_and_reimport_is_a_no_op(loaded, tmp_path):
    files = [
        _write(tmp_path, "a.csv", "date,symbol,dividend,split_coefficient\n"
               "2020-01-06,AAA,0,2.0\n2020-01-03,BBB,0.5,1.0"),
        _write(tmp_path, "l.csv", "symbol,from,to,reason,cash_out\n"
               "BBB,2019-01-01,2020-01-03,acquired,21.5"),
        _write(tmp_path, "s.csv", "symbol,sector,from,to\nAAA,Energy,2000-01-01,2019-12-31\n"
               "AAA,Utilities,2020-01-01,"),
        _write(tmp_path, "m.csv", "index,symbol,from,to\nSP,AAA,2019-01-01,\nSP,BBB,2019-01-01,"
               "2020-01-03"),
    ]  # fmt: skip
    reports = import_files(loaded, files)
    assert [r.kind for r in reports] == ["actions", "listings", "sector_history", "membership"]
    first = _snapshot(loaded)
    assert len(first["corporate_actions"]) == 2 and len(first["sector_history"]) == 2
    import_files(loaded, files)
    assert _snapshot(loaded) == first
    m = loaded.market
    assert m.index_members("SP", m.trading_days()[0]) == ["AAA", "BBB"]
    assert m.index_members("SP", m.trading_days()[-1]) == ["AAA"]
    assert m.sectors_as_of(m.trading_days()[0])["AAA"] == "Utilities"
    assert m.sectors_as_of(date(2019, 6, 3))["AAA"] == "Energy"
    assert m.universe_symbols(date(2020, 1, 6)) == ["AAA"]  # BBB's listing ended on 01-03


BAD = {
    "unknown symbol": ("a.csv", "date,symbol,dividend,split_coefficient\n"
                       "2020-01-06,AAA,0,2\n2020-01-06,ZZZ,0,2", 3),
    "split ratio <= 0": ("a.csv", "date,symbol,split_coefficient\n2020-01-06,AAA,0", 2),
    "dividend >= previous close": ("a.csv", "date,symbol,dividend\n2020-01-03,AAA,1\n"
                                   "2020-01-06,AAA,150", 3),
    "negative dividend": ("a.csv", "date,symbol,dividend\n2020-01-06,AAA,-1", 2),
    "dates run backwards (to before from)": ("l.csv", "symbol,from,to\nAAA,2020-02-01,2020-01-01",
                                             2),
    "overlapping intervals": ("m.csv", "index,symbol,from,to\nSP,AAA,2019-01-01,2020-01-31\n"
                              "SP,AAA,2020-01-15,", 3),
    "non-positive cash_out": ("l.csv", "symbol,from,to,cash_out\nAAA,2019-01-01,2020-01-01,0", 2),
}  # fmt: skip


@pytest.mark.parametrize("rule", list(BAD))
def test_bad_input_is_one_line_naming_file_line_and_rule_and_changes_nothing(
    loaded, tmp_path, rule
):
    import_files(loaded, [_write(tmp_path, "ok.csv", "symbol,from,to\nBBB,2019-01-01,")])
    before = _snapshot(loaded)
    name, text, line = BAD[rule]
    path = _write(tmp_path, name, text)
    with pytest.raises(DataImportError) as exc:
        import_files(loaded, [path])
    assert exc.value.rule == rule and exc.value.line == line
    assert str(exc.value).startswith(f"{path}, line {line}: {rule}")
    assert "\n" not in str(exc.value)
    assert _snapshot(loaded) == before


def test_an_interval_overlapping_a_stored_one_is_refused(loaded, tmp_path):
    import_files(loaded, [_write(tmp_path, "a.csv", "symbol,from,to\nBBB,2019-01-01,2019-12-31")])
    before = _snapshot(loaded)
    path = _write(tmp_path, "b.csv", "symbol,from,to\nBBB,2019-06-01,")
    with pytest.raises(DataImportError, match=r"b\.csv, line 2: overlapping intervals.*stored"):
        import_files(loaded, [path])
    assert _snapshot(loaded) == before
    import_files(loaded, [_write(tmp_path, "c.csv", "symbol,from,to\nBBB,2020-01-01,")])  # after


def test_an_action_may_come_with_its_prices_in_the_same_import(store, tmp_path):
    bars = _write(tmp_path, "bars.csv", BARS)
    acts = _write(tmp_path, "a.csv", "date,symbol,split_coefficient\n2020-01-06,AAA,2")
    import_files(store, [acts, bars])
    assert store.db.count("corporate_actions") == 1


def test_differently_adjusted_bars_are_refused_unless_replace(loaded, tmp_path):
    before = _snapshot(loaded)
    other = BARS.replace("2020-01-03,AAA,100,101,99,100,1000", "2020-01-03,AAA,50,51,49,50,2000")
    path = _write(tmp_path, "other.csv", other)
    with pytest.raises(DataImportError) as exc:
        import_files(loaded, [path])
    assert exc.value.rule == "overlaps stored bars with different values" and exc.value.line == 3
    assert "--replace" in str(exc.value) and "AAA" in str(exc.value)
    assert _snapshot(loaded) == before
    import_files(loaded, [_write(tmp_path, "same.csv", BARS)])  # identical bars: a no-op
    import_files(loaded, [path], replace=True)
    assert loaded.market.get_prices("AAA")["close"].tolist() == [100.0, 50.0, 50.0]


def test_skip_bad_drops_and_reports_actions_refused_at_write_time(loaded, tmp_path):
    path = _write(tmp_path, "a.csv", "date,symbol,dividend\n2020-01-03,AAA,1\n2020-01-06,AAA,150\n"
                  "2020-01-06,ZZZ,1")  # fmt: skip
    (report,) = import_files(loaded, [path], skip_bad=True)
    assert [(b.line, b.rule) for b in report.bad] == [
        (3, "dividend >= previous close"),
        (4, "unknown symbol"),
    ]
    assert report.rows_valid == 1
    assert loaded.db.rows("SELECT symbol, date, dividend FROM corporate_actions") == [
        ("AAA", "2020-01-03", 1.0)
    ]


def test_adjusted_bars_and_actions_together_are_refused(store, tmp_path):
    bars = _write(tmp_path, "bars.csv", "date,symbol,open,high,low,close,adj_close,volume\n"
                  "2020-01-02,AAA,100,101,99,100,50,1000")  # fmt: skip
    acts = _write(tmp_path, "a.csv", "date,symbol,split_coefficient\n2020-01-02,AAA,2")
    with pytest.raises(DataImportError, match=r"bars\.csv: adjusted bars with corporate actions"):
        import_files(store, [bars, acts], adjust="adj_close")
    assert _snapshot(store) == {t: [] for t in TABLES}
    import_files(store, [bars, acts])  # raw bars beside the actions: fine
    with pytest.raises(DataImportError, match="adjusted bars with corporate actions"):
        import_files(store, [bars], adjust="adj_close", replace=True)
