"""The HTML report and the output folder: self-contained, escaped, small; no vectorbt needed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.report import (
    CHART_IDS,
    OUTPUT_FILES,
    TOP_HOLDINGS,
    holdings_table,
    monthly_turnover,
    write_outputs,
    write_report,
)
from engine.tearsheet import build_sections
from engine.tearsheet.stats import ROUND_TRIP_COLUMNS

METRICS = {"cagr": 0.1234, "sharpe_ratio": 1.5, "n_trades": 42.0, "sortino_ratio": None}
WARNING = "ML mode 'current' uses models trained on the future: look-ahead"


def _record(days: int = 60, symbols: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2020-01-01", periods=days)
    equity = pd.Series(1000 * np.cumprod(1 + rng.normal(0, 0.01, days)), index=index)
    benchmark = pd.Series(50 * np.cumprod(1 + rng.normal(0, 0.01, days)), index=index)
    raw = rng.random((days, symbols))
    weights = pd.DataFrame(
        0.9 * raw / raw.sum(axis=1, keepdims=True),
        index=index,
        columns=[f"S{i:02d}" for i in range(symbols)],
    )
    trades = pd.DataFrame(
        {
            "date": index[[0, days // 2]],
            "symbol": ["S00", "S01"],
            "side": ["buy", "sell"],
            "quantity": [5.0, 2.0],
            "price": [100.0, 50.0],
            "value": [500.0, 100.0],
            "commission": [0.5, 0.1],
            "slippage": [0.1, 0.0],
        }
    )
    return equity, benchmark, weights, trades


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> str:
    equity, benchmark, weights, trades = _record()
    path = write_report(
        tmp_path_factory.mktemp("report") / "report.html",
        title="Run <script>alert(1)</script>",
        equity=equity,
        benchmark=benchmark,
        weights=weights,
        trades=trades,
        metrics=METRICS,
        warnings=[WARNING],
        config_text="strategy: top_n\nnote: <b>bold</b>",
    )
    assert path.exists()
    return path.read_text(encoding="utf-8")


def test_report_has_every_chart(report_html):
    for div_id in CHART_IDS:
        assert f'id="{div_id}" class="plotly-graph-div chart"' in report_html
    assert report_html.count("Plotly.newPlot(") == len(CHART_IDS)


def test_plotly_js_is_inlined_exactly_once(report_html):
    assert report_html.count("* plotly.js v") == 1
    assert "<script src=" not in report_html  # nothing fetched: the report works offline


def test_metrics_table_and_warning_banner(report_html):
    html = report_html
    assert "look-ahead" in html[html.index('class="warnings"') : html.index("<h2>Metrics</h2>")]
    assert "Annual return (CAGR)" in report_html and "12.34 %" in report_html
    assert "Sharpe ratio (risk-free 0)" in report_html and "1.50" in report_html
    assert "<td>Fills</td>" in report_html and ">42</td>" in report_html
    assert "n/a" in report_html  # sortino None
    assert 'class="warnings"' in report_html
    assert "ML mode &#39;current&#39; uses models trained on the future: look-ahead" in report_html


def test_user_text_is_escaped(report_html):
    assert "<script>alert(1)</script>" not in report_html
    assert "Run &lt;script&gt;alert(1)&lt;/script&gt;" in report_html
    assert "note: &lt;b&gt;bold&lt;/b&gt;" in report_html


def test_no_warnings_no_banner(tmp_path):
    equity, benchmark, weights, trades = _record(days=10)
    empty_trades = trades.iloc[:0]
    path = write_report(
        tmp_path / "r.html",
        title="t",
        equity=equity,
        benchmark=None,
        weights=weights.iloc[:0],
        trades=empty_trades,
        metrics={},
    )
    html = path.read_text(encoding="utf-8")
    assert 'class="warnings"' not in html
    assert "no holdings recorded" in html


def test_holdings_keep_the_top_symbols_and_group_the_rest():
    _, _, weights, _ = _record(days=5, symbols=40)
    table = holdings_table(weights)
    assert list(table.columns[-1:]) == ["other"] and table.shape[1] == TOP_HOLDINGS + 1
    pd.testing.assert_series_equal(table.sum(axis=1), weights.sum(axis=1))
    assert holdings_table(weights.iloc[:, :3]).shape[1] == 3


def test_monthly_turnover_by_hand():
    index = pd.bdate_range("2020-01-01", "2020-02-28")
    equity = pd.Series(1000.0, index=index)
    trades = pd.DataFrame(
        {"date": [index[0], index[1], index[-1]], "value": [1000.0, 200.0, 400.0]}
    )
    got = monthly_turnover(trades, equity)
    assert got.tolist() == pytest.approx([1200 / 2 / 1000, 400 / 2 / 1000])


def test_five_years_fifty_symbols_stays_small(tmp_path):
    equity, benchmark, weights, trades = _record(days=5 * 252, symbols=50)
    path = write_report(
        tmp_path / "big.html",
        title="big",
        equity=equity,
        benchmark=benchmark,
        weights=weights,
        trades=trades,
        metrics=METRICS,
    )
    assert path.stat().st_size < 10 * 1024 * 1024


def test_write_outputs_writes_the_four_files(tmp_path):
    equity, benchmark, weights, trades = _record(days=10)
    cash = pd.Series(100.0, index=equity.index)
    metrics = {"cagr": 0.1, "sharpe_ratio": float("nan"), "n_trades": 2.0, "b": np.float64(1)}
    paths = write_outputs(
        tmp_path / "out" / "run1",
        metrics=metrics,
        trades=trades,
        equity=equity,
        benchmark=benchmark,
        weights=weights,
        cash=cash,
        warnings=[WARNING],
    )
    assert set(paths) == {"metrics", "trades", "equity", "round_trips", "report"}
    assert all(p.exists() for p in paths.values())

    text = paths["metrics"].read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded == {"b": 1.0, "cagr": 0.1, "n_trades": 2.0, "sharpe_ratio": None}
    assert list(loaded) == sorted(loaded) and text.startswith('{\n  "')

    table = pd.read_csv(paths["equity"])
    assert list(table.columns) == ["date", "equity", "cash", "benchmark"]
    assert table["date"].iloc[0] == "2020-01-01" and len(table) == 10
    assert len(pd.read_csv(paths["trades"])) == len(trades)
    trips = pd.read_csv(paths["round_trips"])  # S01 was sold without a recorded buy: no trip
    assert list(trips.columns) == list(ROUND_TRIP_COLUMNS) and trips.empty
    assert WARNING.split(":")[0].replace("'", "&#39;") in paths["report"].read_text("utf-8")


def _trading_record(days: int = 260, symbols: int = 6, seed: int = 4):
    """A record with round trips: every 20 days the book sells one symbol and buys the next."""
    equity, benchmark, weights, _ = _record(days=days, symbols=symbols, seed=seed)
    rows = []
    names = list(weights.columns)
    for k, day in enumerate(equity.index[::20]):
        buy, sell = names[k % symbols], names[(k - 1) % symbols]
        rows.append((day, buy, "buy", 10.0, 100.0 + k, 1000.0 + 10 * k, 1.0, 0.5))
        if k:
            rows.append((day, sell, "sell", 10.0, 101.0 + k, 1010.0 + 10 * k, 1.0, 0.5))
    cols = ["date", "symbol", "side", "quantity", "price", "value", "commission", "slippage"]
    return equity, benchmark, weights, pd.DataFrame(rows, columns=cols)


def test_every_chart_has_data_for_a_full_record():
    equity, benchmark, weights, trades = _trading_record()
    sectors = {name: ("Tech" if i % 2 else "Energy") for i, name in enumerate(weights.columns)}
    sections = build_sections(equity=equity, benchmark=benchmark, weights=weights, trades=trades,
                              cash=equity * 0.1, sectors=sectors, capital=1000.0)  # fmt: skip
    charts = {div_id: fig for s in sections for div_id, _, fig in s.charts}
    assert tuple(charts) == CHART_IDS
    for div_id, fig in charts.items():
        assert fig.data, div_id
        assert not fig.layout.annotations, div_id  # the "no data" note
        assert all(
            len(t.z if getattr(t, "z", None) is not None else (t.x if t.x is not None else t.y))
            for t in fig.data
        ), div_id
    tables = {t.caption.split(":")[0]: t for s in sections for t in s.tables}
    assert len(tables["Round trips (first in, first out)"].rows) > 5
    assert {row[0] for row in tables["P&L by sector"].rows} == {"Tech", "Energy"}


def test_planted_high_turnover_and_costs_warn_in_the_report(tmp_path):
    equity, benchmark, weights, trades = _trading_record()
    busy = trades.assign(value=trades["value"] * 50, commission=30.0)  # ~9x equity a month
    metrics = {"turnover": 25.0, "total_costs": float(busy["commission"].sum() + 10)}
    html = write_report(tmp_path / "r.html", title="t", equity=equity, benchmark=benchmark,
                        weights=weights, trades=busy, metrics=metrics,
                        capital=1000.0).read_text("utf-8")  # fmt: skip
    banner = html.split('class="warnings"')[1].split("</div>")[0]
    assert "Turnover is 2500% a year" in banner
    assert "of the starting capital (above 5%)" in banner
    calm = write_report(tmp_path / "c.html", title="t", equity=equity, benchmark=benchmark,
                        weights=weights, trades=trades, metrics={"turnover": 1.0,
                        "total_costs": 1.0}, capital=1000.0).read_text("utf-8")  # fmt: skip
    assert 'class="warnings"' not in calm


def test_a_given_warning_is_shown_once(tmp_path):
    equity, benchmark, weights, trades = _record(days=30)
    survivorship = "universe 'all' is today's list: survivorship bias"
    metrics = {"turnover": 12.0}
    from engine.tearsheet.labels import figure_warnings

    given = [survivorship, *figure_warnings(metrics, None)]
    html = write_report(tmp_path / "r.html", title="t", equity=equity, benchmark=benchmark,
                        weights=weights, trades=trades, metrics=metrics,
                        warnings=given).read_text("utf-8")  # fmt: skip
    assert html.count("survivorship bias") == 1 and html.count("Turnover is 1200%") == 1


def test_extra_sections_come_after_the_tear_sheet(tmp_path):
    equity, benchmark, weights, trades = _record(days=30)
    fragment = '<div id="ml-diagnostics"><b>model scores</b></div>'
    html = write_report(tmp_path / "r.html", title="t", equity=equity, benchmark=benchmark,
                        weights=weights, trades=trades, metrics=METRICS, config_text="a: 1",
                        sections=[("ML <diagnostics>", fragment)]).read_text("utf-8")  # fmt: skip
    assert fragment in html  # trusted HTML, as given
    assert '<section id="extra-1"><h2>ML &lt;diagnostics&gt;</h2>' in html  # heading is text
    assert html.index('id="chart-holding-periods"') < html.index(fragment)
    assert html.index(fragment) < html.index("<h2>Configuration</h2>")


def test_round_trips_csv_is_an_output_file():
    assert "round_trips.csv" in OUTPUT_FILES


def test_holdings_chart_gives_each_top_symbol_its_own_colour():
    from engine.tearsheet.figures import OTHER_COLOR, holdings_figure

    _, _, weights, _ = _record(days=5, symbols=40)
    fig = holdings_figure(holdings_table(weights))
    colours = {t.name: t.line.color for t in fig.data}
    assert colours.pop("other") == OTHER_COLOR and len(colours) == TOP_HOLDINGS
    assert len(set(colours.values())) == TOP_HOLDINGS and OTHER_COLOR not in colours.values()
