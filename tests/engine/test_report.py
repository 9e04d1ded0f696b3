"""The HTML report and the output folder: self-contained, escaped, small; no vectorbt needed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.report import (
    CHART_IDS,
    TOP_HOLDINGS,
    holdings_table,
    monthly_turnover,
    write_outputs,
    write_report,
)

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
        assert f'id="{div_id}"' in report_html
    assert report_html.count("Plotly.newPlot(") == len(CHART_IDS)


def test_plotly_js_is_inlined_exactly_once(report_html):
    assert report_html.count("* plotly.js v") == 1
    assert "<script src=" not in report_html  # nothing fetched: the report works offline


def test_metrics_table_and_warning_banner(report_html):
    assert "cagr" in report_html and "12.34%" in report_html
    assert "1.500" in report_html and "42" in report_html
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
    assert set(paths) == {"metrics", "trades", "equity", "report"}
    assert all(p.exists() for p in paths.values())

    text = paths["metrics"].read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert loaded == {"b": 1.0, "cagr": 0.1, "n_trades": 2.0, "sharpe_ratio": None}
    assert list(loaded) == sorted(loaded) and text.startswith('{\n  "')

    table = pd.read_csv(paths["equity"])
    assert list(table.columns) == ["date", "equity", "cash", "benchmark"]
    assert table["date"].iloc[0] == "2020-01-01" and len(table) == 10
    assert len(pd.read_csv(paths["trades"])) == len(trades)
    assert WARNING.split(":")[0].replace("'", "&#39;") in paths["report"].read_text("utf-8")
