"""Import rules, one small bad file each; atomicity; idempotence; the real files when present."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sentinel.data.importer import import_files
from sentinel.errors import DataImportError
from sentinel.symbols import InvalidSymbolError
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
    "invalid symbol": "2020-01-06,../../evil,10,11,9,10,100",
    "non-numeric value": "2020-01-06,AAA,10,True,9,10,100",
    "non-finite value": "2020-01-06,AAA,10,inf,9,inf,100",
    "price > 1e7": "2020-01-06,AAA,10,1e308,9,10,100",
    "volume > 1e13": "2020-01-06,AAA,10,11,9,10,1e20",
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


def test_bars_written_in_chunks_are_one_transaction(store, tmp_path, monkeypatch):
    """Prices go to the driver a chunk at a time (memory); a failure in a later chunk still
    leaves the store as it was, and a whole import equals the one-chunk import."""
    from sentinel.data import importer

    first = _csv(tmp_path, GOOD[:1], "first.csv")
    import_files(store, [first])
    before = _snapshot(store)
    monkeypatch.setattr(importer, "WRITE_CHUNK", 1)
    calls, real = [], store.db.upsert_tuples

    def failing(table, *args, **kwargs):
        calls.append(table)
        if calls.count("prices") == 3:
            raise RuntimeError("disk full")
        return real(table, *args, **kwargs)

    monkeypatch.setattr(store.db, "upsert_tuples", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        import_files(store, [_csv(tmp_path, GOOD, "all.csv")])
    assert calls.count("prices") == 3 and _snapshot(store) == before
    monkeypatch.setattr(store.db, "upsert_tuples", real)
    import_files(store, [_csv(tmp_path, GOOD, "all.csv")])
    assert _snapshot(store) == [
        ("AAA", "2020-01-02", 10.0, 11.0, 9.0, 10.5, 1000.0),
        ("AAA", "2020-01-03", 10.5, 11.5, 10.0, 11.0, 1200.0),
        ("BBB", "2020-01-02", 20.0, 21.0, 19.0, 20.5, 500.0),
    ]


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


# -- issue 15: numbers, dates and symbols are checked strictly, errors name file and line -----


def _bars(store) -> list[tuple]:
    return store.db.rows("SELECT symbol, date, high, close, volume FROM prices ORDER BY 1, 2")


def test_cli_refuses_inf_over_a_real_bar_and_keeps_it(tmp_path, run_cli):
    """The issue's command: exit 1, one line naming file, line and rule; the bar is unchanged."""
    env = {"SENTINEL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    real = _csv(tmp_path, ["2022-06-01,DAA,10,11,9,10.5,1000"], "real.csv")
    bad = _csv(tmp_path, ["2022-06-01,DAA,10,inf,9,inf,1000"], "i.csv")

    def run(path: Path):
        return run_cli("data", "import", str(path), env=env, cwd=tmp_path)  # in this process

    assert run(real).returncode == 0
    r = run(bad)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"{bad}, line 2: non-finite value" in lines[0]
    from sentinel.db import Store

    store = Store(env["SENTINEL_DATABASE_URL"])
    assert _bars(store) == [("DAA", "2022-06-01", 11.0, 10.5, 1000.0)]
    store.engine.dispose()


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        ("2022-06-01,DAA,10,-inf,9,10,5", "non-finite value"),
        ("2022-06-01,DAA,10,1e400,9,10,5", "non-finite value"),  # overflows to inf
        ("2022-06-01,DAA,10,11,9,10,Infinity", "non-finite value"),
        ("2022-06-01,DAA,10,11,9,10,nan", "non-numeric value"),  # text, not an empty field
        ("2022-06-01,DAA,10,11,9,10,False", "non-numeric value"),
        ("2022-06-01,DAA,10,11,9,abc,5", "non-numeric value"),
        ("2022-06-01,DAA,10,11,9,10,0x10", "non-numeric value"),
        ("2022-06-01,DAA,1e7,2e7,1e7,1e7,5", "price > 1e7"),
        ("2022-06-01,DAA,10,11,9,10,2e13", "volume > 1e13"),
    ],
)
def test_numbers_must_be_finite_plain_and_bounded(store, tmp_path, row, rule):
    import_files(store, [_csv(tmp_path, ["2022-06-01,DAA,10,11,9,10.5,1000"], "real.csv")])
    before = _bars(store)
    path = _csv(tmp_path, ["2022-05-31,DAA,10,11,9,10,5", row])
    with pytest.raises(DataImportError) as exc:
        import_files(store, [path])
    assert (exc.value.rule, exc.value.line, exc.value.path) == (rule, 3, str(path))
    assert _bars(store) == before
    (report,) = import_files(store, [path], skip_bad=True)
    assert [(b.path, b.line, b.rule) for b in report.bad] == [(str(path), 3, rule)]
    assert [b[1] for b in _bars(store)] == ["2022-05-31", "2022-06-01"]
    assert _bars(store)[1] == before[0]  # the real bar was not overwritten


def test_a_whole_boolean_column_is_refused(store, tmp_path):
    path = _csv(tmp_path, ["2022-06-03,DAA,True,True,True,True,True"])
    with pytest.raises(DataImportError, match="line 2: non-numeric value"):
        import_files(store, [path])
    pq = tmp_path / "bools.parquet"
    pd.DataFrame(
        {"date": ["2022-06-03"], "symbol": ["DAA"], "open": [True], "high": [True],
         "low": [True], "close": [True], "volume": [1]}
    ).to_parquet(pq)  # fmt: skip
    with pytest.raises(DataImportError, match="non-numeric value"):
        import_files(store, [pq])
    assert store.db.count("prices") == 0


def test_prices_stay_below_the_bound_of_the_largest_real_shares(store, tmp_path):
    # BRK-A traded near 700,000 a share: well inside the 1e7 bound
    path = _csv(tmp_path, ["2024-03-28,BRK-A,620000,635000,619000,634440,7000"])
    import_files(store, [path])
    assert store.market.get_prices("BRK-A")["close"].tolist() == [634440.0]


def test_other_kinds_refuse_non_finite_and_non_numeric_values(store, tmp_path):
    senti = _csv(
        tmp_path, ["2020-01-02,AAA,0.5", "2020-01-03,AAA,True"], "s.csv", "date,symbol,score"
    )
    with pytest.raises(DataImportError, match="s.csv, line 3: non-numeric value"):
        import_files(store, [senti])
    bench = _csv(tmp_path, ["2020-01-02,100", "2020-01-03,inf"], "spy.csv", "date,close")
    with pytest.raises(DataImportError, match="spy.csv, line 3: non-finite value"):
        import_files(store, [bench], kind="benchmark", symbol="SPY")
    adj = _csv(
        tmp_path, ["2020-01-02,AAA,10,11,9,10,inf,5"], "adj.csv",
        HEADER.replace("close,volume", "close,adj_close,volume"),
    )  # fmt: skip
    with pytest.raises(DataImportError, match="adj.csv, line 2: non-finite value"):
        import_files(store, [adj])
    assert store.db.count("sentiment") == store.db.count("benchmark_prices") == 0
    assert store.db.count("prices") == 0


@pytest.mark.parametrize(
    "date",
    ["2024-01-02garbage", "2024-01-02T00:30+09:00", "2024-01-02T00:00:00", "2024-01-02Z",
     "2024-01-02 09:30:00", "2024-01-02 00:00:00+00:00", "2024-1-2", "20240102", "02/01/2024",
     "2024-02-30", "0999-01-02", "2024-01-02 00:00"],
)  # fmt: skip
def test_a_date_is_exactly_an_iso_day(store, tmp_path, date):
    path = _csv(tmp_path, ["2024-01-03,AAA,10,11,9,10,5", f"{date},AAA,10,11,9,10,5"])
    with pytest.raises(DataImportError) as exc:
        import_files(store, [path])
    assert exc.value.rule in ("unparseable date", "date out of range")
    assert exc.value.line == 3 and str(path) in str(exc.value)
    assert store.db.count("prices") == 0
    (report,) = import_files(store, [path], skip_bad=True)
    assert [b.line for b in report.bad] == [3]
    assert store.db.count("prices") == 1


def test_plain_midnight_timestamps_and_padded_dates_are_days(store, tmp_path):
    path = _csv(tmp_path, ["2024-01-02 00:00:00,AAA,10,11,9,10,5", " 2024-01-03 ,AAA,10,11,9,10,5"])
    import_files(store, [path])
    assert [d.isoformat() for d in store.market.get_prices("AAA").index.date] == [
        "2024-01-02",
        "2024-01-03",
    ]


def test_parquet_datetime_dates_must_be_midnight_without_zone(store, tmp_path):
    df = pd.read_csv(_csv(tmp_path, GOOD))
    ok = tmp_path / "ok.parquet"
    df.assign(date=pd.to_datetime(df["date"])).to_parquet(ok)
    import_files(store, [ok])
    assert store.db.count("prices") == 3
    for name, dates in {
        "tz.parquet": pd.to_datetime(df["date"]).dt.tz_localize("Asia/Tokyo"),
        "intraday.parquet": pd.to_datetime(df["date"]) + pd.Timedelta("9h30min"),
    }.items():
        df.assign(date=dates).to_parquet(tmp_path / name)
        with pytest.raises(DataImportError, match="unparseable date"):
            import_files(store, [tmp_path / name])
    assert store.db.count("prices") == 3


BAD_SYMBOLS = ["../../evil", "ÄÖÜ", "aapl", "A B", "A/B", "X" * 17, "-RF", ".HIDDEN", "A..B"]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_symbols_follow_the_one_rule_in_every_kind(store, tmp_path, symbol):
    quoted = '"' + symbol + '"'
    files = {
        "prices": _csv(tmp_path, [f"2020-01-02,{quoted},10,11,9,10,5"], "p.csv"),
        "benchmark": _csv(tmp_path, [f"2020-01-02,{quoted},10"], "b.csv", "date,symbol,close"),
        "sectors": _csv(tmp_path, ["AAA,Energy", f"{quoted},Energy"], "sec.csv", "symbol,sector"),
        "sentiment": _csv(tmp_path, [f"2020-01-02,{quoted},0.1"], "sen.csv", "date,symbol,score"),
    }
    for kind, path in files.items():
        with pytest.raises(DataImportError) as exc:
            import_files(store, [path], kind=kind)  # type: ignore[arg-type]
        assert exc.value.rule == "invalid symbol", kind
        assert exc.value.line == (3 if kind == "sectors" else 2) and str(path) in str(exc.value)
        assert "\n" not in str(exc.value)
    bench = _csv(tmp_path, ["2020-01-02,100"], "spy.csv", "date,close")
    with pytest.raises(InvalidSymbolError, match=r"spy.csv: --symbol: invalid symbol"):
        import_files(store, [bench], kind="benchmark", symbol=symbol)
    for table in ("prices", "benchmark_prices", "securities", "sentiment"):
        assert store.db.count(table) == 0, table


def test_unusual_but_valid_symbols_are_imported(store, tmp_path):
    rows = [
        f"2020-01-02,{s},10,11,9,10,5" for s in ("BRK.B", "BF-B", "^GSPC", "ES=F", "NA", "7203")
    ]
    import_files(store, [_csv(tmp_path, rows)])
    assert sorted(s.symbol for s in store.market.securities()) == sorted(
        ["BRK.B", "BF-B", "^GSPC", "ES=F", "NA", "7203"]  # "NA" is a symbol, not a missing value
    )


def test_line_numbers_count_blank_lines_and_quoted_newlines(store, tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(
        HEADER + "\n"
        "2020-01-02,AAA,10,11,9,10,5\n"  # line 2
        "\n"  # line 3: blank, ignored
        '2020-01-03,"AAA",10,11,9,10,5\n'  # line 4
        '2020-01-06,"A\nB",10,11,9,10,5\n'  # lines 5-6: a quoted newline in the symbol
        "2020-01-07,AAA,10,11,9,10,-5\n"  # line 7
    )
    (report,) = import_files(store, [path], skip_bad=True)
    assert [(b.line, b.rule) for b in report.bad] == [(5, "invalid symbol"), (7, "negative volume")]
    assert report.rows_valid == 2
    with pytest.raises(DataImportError) as exc:
        import_files(store, [path])
    assert exc.value.line == 5 and "\n" not in str(exc.value) and "'A\\nB'" in str(exc.value)


def test_malformed_files_are_refused_with_file_and_line(store, tmp_path):
    extra = _csv(tmp_path, [GOOD[0], GOOD[1] + ",7"], "extra.csv")
    with pytest.raises(DataImportError, match=r"extra.csv, line 3: .*field"):
        import_files(store, [extra])
    first_extra = _csv(tmp_path, [GOOD[0] + ",7", GOOD[1]], "first.csv")
    with pytest.raises(DataImportError, match=r"first.csv, line 2: .*field"):
        import_files(store, [first_extra])
    dup = _csv(tmp_path, ["2020-01-02,AAA,10,10,11,9,10.5,1000"], "dup.csv",
               "date,symbol,Open,open,high,low,close,volume")  # fmt: skip
    with pytest.raises(DataImportError, match=r"dup.csv, line 1: duplicate column \(open\)"):
        import_files(store, [dup])
    binary = tmp_path / "bin.csv"
    binary.write_bytes(
        (HEADER + "\n" + GOOD[0] + "\n").encode() + b"2020-01-03,\xff\xfe,1,1,1,1,1\n"
    )
    with pytest.raises(DataImportError, match=r"bin.csv, line 3: not UTF-8 text"):
        import_files(store, [binary])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataImportError, match=r"empty.csv, line 1: "):
        import_files(store, [empty])
    assert store.db.count("prices") == 0


def test_a_byte_order_mark_is_not_part_of_the_first_column(store, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n" + GOOD[0] + "\n").encode())
    import_files(store, [path])
    assert store.db.count("prices") == 1


def test_sector_files_refuse_control_characters_and_unknown_flags(store, tmp_path):
    ctrl = _csv(tmp_path, ['AAA,"Ener\x00gy"'], "ctrl.csv", "symbol,sector")
    with pytest.raises(DataImportError, match=r"ctrl.csv, line 2: control character"):
        import_files(store, [ctrl])
    flag = _csv(tmp_path, ["AAA,Energy,yes", "BBB,Energy,maybe"], "flag.csv",
                "symbol,sector,ml_enabled")  # fmt: skip
    with pytest.raises(DataImportError, match=r"flag.csv, line 3: invalid ml_enabled"):
        import_files(store, [flag])
    assert store.db.count("securities") == 0


def test_real_files_pass_the_symbol_rule_and_the_bounds():
    """Every symbol, date and number of ../shared/data is accepted by the new rules."""
    from sentinel.data.importer import MAX_PRICE, MAX_VOLUME
    from sentinel.symbols import is_valid_symbol

    for name in ("sp500_5y_prices.csv.gz", "dow30_20y_prices.csv.gz", "benchmarks.csv.gz",
                 "index_2000-2017.csv.gz", "sp500_av_1999-2017_prices.csv.gz"):  # fmt: skip
        df = pd.read_csv(shared_file(name), dtype={"symbol": str, "date": str})
        assert all(is_valid_symbol(s) for s in df["symbol"].unique()), name
        assert df["date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), name
        prices = df[["open", "high", "low", "close", "adj_close"]]
        assert float(prices.max().max()) < MAX_PRICE / 1000, name  # three orders of headroom
        assert float(df["volume"].max()) < MAX_VOLUME / 100, name
    for name in ("sectors.csv", "sectors_sp500_2021.csv"):
        df = pd.read_csv(shared_file(name), dtype=str, keep_default_na=False)
        assert all(is_valid_symbol(s) for s in df["symbol"]), name
