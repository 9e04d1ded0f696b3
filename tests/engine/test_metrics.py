"""Backtest figures on curves with answers known by hand; vectorbt compiles once per process."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.metrics import METRIC_KEYS, align_benchmark, compute_metrics

TRADE_COLUMNS = ["date", "symbol", "side", "quantity", "price", "value", "commission", "slippage"]
NO_TRADES = pd.DataFrame(columns=TRADE_COLUMNS)


def _curve(values, start: str = "2020-01-01") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


@pytest.fixture(scope="module")
def constant_growth() -> dict[str, float | None]:
    """253 closes growing 0.1% a day: exactly 252 returns, one year."""
    r = 0.001
    return compute_metrics(_curve(100 * (1 + r) ** np.arange(253)), None, NO_TRADES)


def test_constant_return_cagr_and_no_drawdown(constant_growth):
    expected = 1.001**252 - 1
    assert constant_growth["cagr"] == pytest.approx(expected, rel=1e-9)
    assert constant_growth["total_return"] == pytest.approx(expected, rel=1e-9)
    assert constant_growth["max_drawdown"] == 0.0
    assert constant_growth["years"] == pytest.approx(1.0)
    assert constant_growth["hit_rate"] == 1.0


def test_zero_volatility_ratios_are_none_not_a_crash(constant_growth):
    # vectorbt gives mean / (float noise) ~ 1e14 and inf here; both mean "undefined"
    assert constant_growth["sharpe_ratio"] is None
    assert constant_growth["sortino_ratio"] is None
    assert constant_growth["calmar_ratio"] is None  # no drawdown to divide by


def test_flat_curve_is_all_defined_or_none():
    m = compute_metrics(_curve([100.0] * 30), None, NO_TRADES)
    assert m["total_return"] == 0.0 and m["cagr"] == 0.0
    assert m["sharpe_ratio"] is None and m["hit_rate"] is None


def test_result_is_json_safe_with_every_key(constant_growth):
    assert set(constant_growth) == set(METRIC_KEYS)
    assert all(v is None or type(v) is float for v in constant_growth.values())
    json.dumps(constant_growth, allow_nan=False)


def test_known_twenty_percent_drawdown():
    m = compute_metrics(_curve([100, 110, 120, 96, 100, 130]), None, NO_TRADES)
    assert m["max_drawdown"] == pytest.approx(-0.20)
    assert m["calmar_ratio"] == pytest.approx(m["cagr"] / 0.20)
    assert m["hit_rate"] == pytest.approx(4 / 5)


def test_sharpe_matches_the_textbook_definition():
    rng = np.random.default_rng(0)
    rets = rng.normal(0.0005, 0.01, 500)
    m = compute_metrics(_curve(100 * np.cumprod(np.r_[1.0, 1 + rets])), None, NO_TRADES)
    assert m["sharpe_ratio"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252))
    assert m["annualized_volatility"] == pytest.approx(rets.std(ddof=1) * math.sqrt(252))


def test_benchmark_alignment_forward_fills_and_never_looks_ahead():
    equity = _curve([100, 101, 102, 103, 104])  # Wed 1 Jan .. Tue 7 Jan 2020
    days = equity.index
    # missing Thu 2 Jan and Mon 6 Jan; a Saturday close; a far-future close after the last day
    benchmark = pd.Series(
        [50.0, 55.0, 57.0, 60.0, 1e6],
        index=[days[0], days[2], pd.Timestamp("2020-01-04"), days[4], pd.Timestamp("2020-02-01")],
    )
    aligned = align_benchmark(benchmark, days)
    assert aligned.tolist() == [50.0, 50.0, 55.0, 57.0, 60.0]

    m = compute_metrics(equity, benchmark, NO_TRADES)
    assert m["benchmark_total_return"] == pytest.approx(60 / 50 - 1)
    assert m["excess_total_return"] == pytest.approx(0.04 - 0.2)
    assert m["excess_return"] == pytest.approx(m["cagr"] - m["benchmark_cagr"])


def test_alpha_beta_and_active_figures_against_numpy():
    rng = np.random.default_rng(5)
    bench_r = rng.normal(0.0003, 0.01, 200)
    port_r = 0.0001 + 1.3 * bench_r + rng.normal(0, 0.004, 200)
    equity = _curve(100 * np.cumprod(np.r_[1.0, 1 + port_r]))
    benchmark = _curve(50 * np.cumprod(np.r_[1.0, 1 + bench_r]))
    m = compute_metrics(equity, benchmark, NO_TRADES)
    slope, intercept = np.polyfit(bench_r, port_r, 1)
    assert m["beta"] == pytest.approx(slope, rel=1e-6)
    assert m["alpha"] == pytest.approx((1 + intercept) ** 252 - 1, rel=1e-6)
    active = port_r - bench_r
    assert m["tracking_error"] == pytest.approx(active.std(ddof=1) * np.sqrt(252), rel=1e-6)
    ir = active.mean() / active.std(ddof=1) * np.sqrt(252)
    assert m["information_ratio"] == pytest.approx(ir, rel=1e-6)
    assert compute_metrics(equity, None, NO_TRADES)["beta"] is None


def test_benchmark_starting_late_is_measured_where_known():
    equity = _curve([100, 101, 102, 103])
    benchmark = pd.Series([10.0, 11.0], index=equity.index[2:])
    m = compute_metrics(equity, benchmark, NO_TRADES)
    assert m["benchmark_total_return"] == pytest.approx(0.1)


def test_turnover_costs_and_trade_count_by_hand():
    equity = _curve([1000.0] * 253)  # mean equity 1000, one year
    trades = pd.DataFrame(
        {
            "date": equity.index[[0, 100, 100]],
            "symbol": ["A", "A", "B"],
            "side": ["buy", "sell", "buy"],
            "quantity": [10.0, 5.0, 25.0],
            "price": [100.0, 100.0, 20.0],
            "value": [1000.0, 500.0, 500.0],
            "commission": [1.0, 0.5, 0.5],
            "slippage": [0.2, 0.1, 0.1],
        }
    )
    m = compute_metrics(equity, None, trades)
    assert m["turnover"] == pytest.approx(2000 / 2 / 1000 / 1.0)
    assert m["n_trades"] == 3.0
    assert m["total_costs"] == pytest.approx(2.4)
    assert m["costs_to_capital"] == pytest.approx(2.4 / 1000.0)  # first equity value by default
    given = compute_metrics(equity, None, trades, initial_capital=800.0)
    assert given["costs_to_capital"] == pytest.approx(2.4 / 800.0)


def test_no_trades_is_zero_turnover():
    m = compute_metrics(_curve([100.0, 101.0, 102.0]), None, NO_TRADES)
    assert m["turnover"] == 0.0 and m["n_trades"] == 0.0 and m["total_costs"] == 0.0


def test_exposure_forward_fills_weights_and_starts_in_cash():
    equity = _curve([100.0] * 4)
    weights = pd.DataFrame({"A": [0.5, 0.6], "B": [0.3, -0.4]}, index=equity.index[[1, 3]])
    m = compute_metrics(equity, None, NO_TRADES, weights=weights)
    assert m["exposure"] == pytest.approx((0 + 0.8 + 0.8 + 1.0) / 4)
    assert compute_metrics(equity, None, NO_TRADES)["exposure"] is None


def test_equity_without_dates_is_rejected():
    with pytest.raises(TypeError, match="DatetimeIndex"):
        compute_metrics(pd.Series([1.0, 2.0]), None, NO_TRADES)
