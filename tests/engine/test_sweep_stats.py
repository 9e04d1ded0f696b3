"""Sweep statistics against a published worked example and simulations with known answers."""

from __future__ import annotations

from math import sqrt

import numpy as np
import pytest
from scipy.stats import norm

from engine.sweep_stats import (
    circular_block_indices,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    selected_dsr,
    sharpe,
    sharpe_intervals,
)


def test_deflated_sharpe_matches_the_published_example():
    # Bailey & Lopez de Prado (2014), section "A numerical example": 5 years of daily returns
    # (T = 1250, 250 days a year), annualised SR 2.5, N = 100 trials whose annualised Sharpe
    # ratios have variance 0.5, skewness -3, kurtosis 10: SR0 = 0.1132 per day, DSR = 0.9004.
    sr, var = 2.5 / sqrt(250), 0.5 / 250
    assert expected_max_sharpe(var, 100) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(sr, sr_variance=var, n_trials=100, n_obs=1250,
                                skewness=-3, kurt=10)  # fmt: skip
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_deflated_sharpe_is_the_probabilistic_sharpe_for_one_trial():
    # one trial: SR0 = 0 and the DSR is the PSR, Phi(SR sqrt(T-1) / sqrt(1 + SR^2/2)) for normal
    sr, t = 0.05, 500
    expected = norm.cdf(sr * sqrt(t - 1) / sqrt(1 + sr**2 / 2))
    got = deflated_sharpe_ratio(sr, sr_variance=0.01, n_trials=1, n_obs=t, skewness=0, kurt=3)
    assert got == pytest.approx(expected, rel=1e-12)


def test_more_trials_deflate_more():
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, size=(750, 20))
    few = selected_dsr(r[:, :3], best=int(np.argmax(sharpe(r[:, :3], axis=0))))
    many = selected_dsr(r, best=int(np.argmax(sharpe(r, axis=0))))
    assert many["sr0_annual"] > few["sr0_annual"] > 0
    assert 0 <= many["dsr"] <= 1 and many["n_trials"] == 20


def test_circular_blocks_are_contiguous_and_wrap():
    idx = circular_block_indices(10, 50, 4, np.random.default_rng(0))
    assert idx.shape == (50, 10) and idx.min() >= 0 and idx.max() <= 9
    steps = np.diff(idx[:, :4], axis=1) % 10  # the first block of each resample
    assert (steps == 1).all()


def test_bootstrap_interval_covers_the_true_sharpe_about_95_percent():
    # iid normal returns with a known Sharpe ratio: the 95% interval should cover it ~95% of the
    # time (a Monte Carlo error of about 1.5 points with 200 replications)
    mu, sd, n, reps = 0.0006, 0.01, 504, 200
    true_sr = mu / sd * sqrt(252)
    rng = np.random.default_rng(11)
    sims = rng.normal(mu, sd, size=(n, reps))
    ci = sharpe_intervals(sims, n_boot=400, seed=1)
    covered = np.mean((ci.low <= true_sr) & (true_sr <= ci.high))
    assert 0.89 <= covered <= 0.99
    # the interval's width is about 2 * 1.96 * sqrt(252 / n) (the iid standard error of SR)
    width = np.median(ci.high - ci.low)
    assert width == pytest.approx(2 * 1.96 * sqrt((1 + (mu / sd) ** 2 / 2) * 252 / n), rel=0.15)


def test_identical_noise_points_cannot_be_told_apart_but_a_clear_winner_can():
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.01, size=(500, 5))
    ci = sharpe_intervals(noise, n_boot=300)
    best = int(np.nanargmax(ci.sharpe))
    assert len(ci.indistinguishable(best)) >= 3
    strong = noise.copy()
    strong[:, 0] += 0.004  # an annualised Sharpe about 6 above the others
    ci2 = sharpe_intervals(strong, n_boot=300)
    assert int(np.nanargmax(ci2.sharpe)) == 0 and ci2.indistinguishable(0) == []


def test_pbo_is_about_a_half_on_noise_and_near_zero_when_one_point_dominates():
    rng = np.random.default_rng(7)
    pbos = [pbo_cscv(rng.normal(0, 0.01, size=(480, 12)), n_splits=10) for _ in range(8)]
    assert 0.3 <= float(np.mean(pbos)) <= 0.7
    grid = rng.normal(0, 0.01, size=(480, 12))
    grid[:, 4] += 0.003
    assert pbo_cscv(grid, n_splits=10) < 0.05


def test_pbo_and_intervals_refuse_too_little_data():
    with pytest.raises(ValueError, match="two points"):
        pbo_cscv(np.zeros((50, 1)))
    with pytest.raises(ValueError, match="at least 3"):
        sharpe_intervals(np.zeros((2, 3)))


def _fake_result(edge: float):
    """A sweep result whose six points are simulated returns; point 0.4 gets ``edge`` a day."""
    import pandas as pd

    from engine.sweep import SweepConfig
    from engine.sweep_run import select
    from engine.sweep_types import SweepResult

    ratios = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    base = {"name": "s", "start": "2019-01-01", "end": "2020-12-31"}
    sweep = SweepConfig.model_validate(
        {"name": "t", "base": base, "grid": {"ml.blend_ratio": ratios}}
    )
    days = pd.bdate_range("2019-01-01", periods=400)
    rng = np.random.default_rng(2)
    points = []
    for x in ratios:
        r = rng.normal(0.0002 + (edge if x == 0.4 else 0.0), 0.01, len(days) - 1)
        values = 100_000 * np.cumprod(np.r_[1.0, 1 + r])
        label = f"ml.blend_ratio={x}"
        points.append({
            "key": f"full-{x}", "label": label, "period": "full",
            "changes": {"ml.blend_ratio": x},
            "metrics": {"sharpe_ratio": float(sharpe(r)), "cagr": 0.1, "turnover": 19.38},
            "equity": {"dates": [d.strftime("%Y-%m-%d") for d in days],
                       "values": [round(float(v), 2) for v in values]},
        })  # fmt: skip
    result = SweepResult(sweep, "t-1", points)
    result.selected = select(result, sweep)
    result.benchmark = {"full": {"symbol": "MARKET", "dates": points[0]["equity"]["dates"],
                                 "values": points[0]["equity"]["values"]}}  # fmt: skip
    return result


def test_sweep_outputs_carry_the_statistics_and_say_when_points_look_alike(tmp_path):
    import json

    from engine.sweep_report import write_sweep_outputs

    noise = _fake_result(edge=0.0)
    paths = write_sweep_outputs(noise, tmp_path / "noise")
    summary = json.loads(paths["json"].read_text())
    stats = summary["statistics"]
    assert len(stats["intervals"]) == 6
    for p in noise.points:
        low, high = stats["intervals"][p["key"]]
        assert low < p["metrics"]["sharpe_ratio"] < high
    sel = stats["selected"]
    assert sel["label"] == noise.selected["label"] and sel["n_points"] == 6
    assert 0 <= sel["pbo"] <= 1 and 0 <= sel["dsr"] <= 1
    assert summary["benchmark"] == {"full": "MARKET"}
    page = paths["html"].read_text()
    assert "cannot be told apart" in page and "Deflated Sharpe ratio" in page
    assert "selected: " + noise.selected["label"] in page and "benchmark MARKET" in page
    assert "1938.00%" in page  # turnover formatted as in the backtest summary
    csv = paths["csv"].read_text().splitlines()[0]
    assert "sharpe_ci_low" in csv and "sharpe_ci_high" in csv

    clear = _fake_result(edge=0.004)
    stats = json.loads(write_sweep_outputs(clear, tmp_path / "clear")["json"].read_text())
    sel = stats["statistics"]["selected"]
    assert sel["label"] == "ml.blend_ratio=0.4" and sel["indistinguishable"] == []
    assert sel["dsr"] > 0.95 and sel["pbo"] < 0.1
    page = (tmp_path / "clear" / "sweep.html").read_text()
    assert "can be told apart from each of the 5 other points" in page


def test_the_benchmark_line_is_the_stored_close_rebased_to_the_points_start(demo_store):
    import pandas as pd

    from engine.sweep_report import benchmark_curves

    result = _fake_result(edge=0.0)
    days = [d for d in demo_store.market.trading_days() if d.year == 2016][:60]
    for p in result.points:  # the points' days are the store's days of 2016
        p["equity"] = {"dates": [d.isoformat() for d in days],
                       "values": p["equity"]["values"][: len(days)]}  # fmt: skip
    curves = benchmark_curves(result, demo_store)
    close = demo_store.market.get_benchmark("MARKET", start_date=days[0], end_date=days[-1])
    close = close["close"]
    line = curves["full"]
    assert line["symbol"] == "MARKET" and line["dates"] == [d.isoformat() for d in days]
    start = result.points[0]["equity"]["values"][0]
    expected = (close / close.iloc[0] * start).round(2).tolist()
    assert line["values"] == pytest.approx(expected, abs=0.011)
    assert pd.Series(line["values"]).iloc[0] == pytest.approx(start)


def test_a_point_that_never_trades_gets_no_interval_and_breaks_nothing(tmp_path):
    import json
    import warnings

    from engine.sweep_stats import grid_statistics

    result = _fake_result(edge=0.0)
    flat = result.points[5]
    flat["equity"]["values"] = [100_000.0] * len(flat["equity"]["values"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = grid_statistics(result.points, result.points[0]["label"], "full", n_boot=200)
    assert stats["intervals"][flat["key"]] == [None, None]
    assert flat["label"] not in stats["selected"]["indistinguishable"]
    assert json.loads(json.dumps(stats)) == stats  # plain JSON: no numpy scalars, no NaN
