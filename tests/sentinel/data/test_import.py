"""Import rules, one small bad file each; atomicity; idempotence; the real files when present."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sentinel.data.importer import import_files
from sentinel.errors import DataImportError
from tests.conftest import shared_file

HEADER = "date,symbol,open,high,low,close,volume"
GOOD = [
    "2020-01-02,AAA,10,11,9,10.5,1000",
    "2020-01-03,AAA,10.5,11.5,10,11,1200",
    "2020-01-02,BBB,20,21,19,20.5,500",
]


def _csv(tmp_path: Path, rows: list[str], name: str = "bars.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _snapshot(store) -> list[tuple]:
    return store.db.rows(
        "SELECT symbol, date, open, high, low, close, volume FROM prices ORDER BY 1, 2"
    )


BAD_ROWS = {
    "unparseable date": "2020-13-45,AAA,10,11,9,10,100",
    "missing symbol": "2020-01-06,,10,11,9,10,100",
    "NaN": "2020-01-06,AAA,,11,9,10,100",
    "non-positive price": "2020-01-06,AAA,10,11,0,10,100",
    "high < low": "2020-01-06,AAA,10,9,11,10,100",
    "open outside [low, high]": "2020-01-06,AAA,12,11,9,10,100",
    "close outside [low, high]": "2020-01-06,AAA,10,11,9,8,100",
    "negative volume": "2020-01-06,AAA,10,11,9,10,-5",
    "duplicate (symbol, date)": "2020-01-07,CCC,5,6,4,5,10",  # repeats the row before it
}


@pytest.mark.parametrize("rule", list(BAD_ROWS))
def test_each_rule_stops_with_file_line_and_rule(store, tmp_path, rule):
    import_files(store, [_csv(tmp_path, GOOD, "seed.csv")])
    before = _snapshot(store)
    path = _csv(tmp_path, ["2020-01-07,CCC,5,6,4,5,10", BAD_ROWS[rule], GOOD[0]])
    with pytest.raises(DataImportError) as exc:
        import_files(store, [path])
    assert exc.value.rule == rule
    assert exc.value.line == 3  # header is line 1, the bad row is the second data row
    assert str(path) in str(exc.value) and rule in str(exc.value)
    assert _snapshot(store) == before  # nothing written, not even the good first row


def test_skip_bad_reports_every_bad_row(store, tmp_path):
    good = [*GOOD, "2020-01-07,CCC,5,6,4,5,10"]
    rows = [*good, *BAD_ROWS.values()]
    (report,) = import_files(store, [_csv(tmp_path, rows)], skip_bad=True)
    assert report.rows_read == len(rows)
    assert report.rows_valid == len(good)
    assert report.bad_by_rule == dict.fromkeys(BAD_ROWS, 1)
    assert [b.line for b in report.bad] == list(range(len(good) + 2, len(rows) + 2))
    assert store.db.count("prices") == len(good)


def test_missing_column_and_unknown_kind(store, tmp_path):
    path = _csv(tmp_path, ["2020-01-02,AAA,10,11,9,10.5"], header="date,symbol,open,high,low,close")
    with pytest.raises(DataImportError, match="missing column.*volume"):
        import_files(store, [path])
    odd = _csv(tmp_path, ["1,2"], name="odd.csv", header="foo,bar")
    with pytest.raises(DataImportError, match="unknown file kind"):
        import_files(store, [odd])
    with pytest.raises(DataImportError, match="file not found"):
        import_files(store, [tmp_path / "nope.csv"])


def test_failed_file_rolls_back_the_whole_import(store, tmp_path):
    good = _csv(tmp_path, GOOD, "good.csv")
    bad = _csv(tmp_path, [BAD_ROWS["NaN"]], "bad.csv")
    with pytest.raises(DataImportError):
        import_files(store, [good, bad])
    assert store.db.count("prices") == 0 and store.db.count("securities") == 0


def test_reimport_changes_nothing(store, tmp_path):
    path = _csv(tmp_path, GOOD)
    import_files(store, [path])
    first = _snapshot(store)
    secs = [s.model_dump() for s in store.market.securities()]
    import_files(store, [path])
    assert _snapshot(store) == first
    assert [s.model_dump() for s in store.market.securities()] == secs
    assert store.market.get_security("AAA").universe_from.isoformat() == "2020-01-02"


def test_parquet_sectors_sentiment_and_benchmark(store, tmp_path):
    df = pd.read_csv(_csv(tmp_path, GOOD))
    pq = tmp_path / "bars.parquet"
    df.to_parquet(pq)
    sectors = _csv(
        tmp_path, ["AAA,Energy,Triple A", "BBB,,Bee"], "sectors.csv", "symbol,sector,name"
    )
    senti = _csv(tmp_path, ["2020-01-02,AAA,0.25"], "senti.csv", "date,symbol,score")
    bench = _csv(tmp_path, ["2020-01-02,1000", "2020-01-03,1010"], "spy.csv", "date,close")
    reports = import_files(store, [pq, sectors, senti])
    assert [r.kind for r in reports] == ["prices", "sectors", "sentiment"]
    import_files(store, [bench], kind="benchmark", symbol="SPY")
    assert store.market.get_security("AAA").sector == "Energy"
    assert store.market.get_security("AAA").name == "Triple A"
    assert store.market.get_security("BBB").sector is None  # no sector: the documented default
    assert store.market.get_security("AAA").universe_from.isoformat() == "2020-01-02"
    assert store.market.get_sentiment("AAA").tolist() == [0.25]
    assert store.market.get_benchmark("SPY")["close"].tolist() == [1000.0, 1010.0]
    bad_senti = _csv(tmp_path, ["2020-01-02,AAA,3"], "bad_senti.csv", "date,symbol,score")
    with pytest.raises(DataImportError, match=r"score outside \[-1, 1\]"):
        import_files(store, [bad_senti])


def test_adjust_scales_ohlc_by_adj_close(store, tmp_path):
    path = _csv(
        tmp_path,
        ["2020-01-02,AAA,100,110,90,100,50,1000", "2020-01-03,AAA,50,55,45,50,25,2000"],
        header=HEADER.replace("close,volume", "close,adj_close,volume"),
    )
    import_files(store, [path], adjust="adj_close")
    df = store.market.get_prices("AAA")
    assert df["close"].tolist() == [50.0, 25.0]
    assert df["high"].tolist() == [55.0, 27.5]
    assert df["volume"].tolist() == [2000.0, 4000.0]


def test_real_sp500_5y_file_with_skip_bad(store):
    path = shared_file("sp500_5y_prices.csv.gz")
    (report,) = import_files(store, [path], skip_bad=True)
    # The defects the data README counts: 538 empty rows, 2 duplicates, 21 opens outside the bar.
    assert report.rows_read == 456_202
    assert report.bad_by_rule == {
        "NaN": 538,
        "duplicate (symbol, date)": 2,
        "open outside [low, high]": 21,
    }
    assert store.db.count("prices") == 456_202 - 561
    assert store.db.count("securities") == 366
    with pytest.raises(DataImportError, match="line"):
        import_files(store, [path])


def test_real_benchmarks_and_sectors(store):
    import_files(store, [shared_file("benchmarks.csv.gz")], kind="benchmark")
    import_files(store, [shared_file("sectors.csv")], skip_bad=True)
    assert set(store.market.benchmark_symbols()) == {"SPY", "^GSPC"}
    assert store.market.market_symbol() == "SPY"
    assert store.market.get_security("AAPL").sector == "Information Technology"
