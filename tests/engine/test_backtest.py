"""End-to-end backtests on a small demo store: outputs, ledger invariants, and the proof that a
run's decisions up to T do not change when everything after T is scrambled."""

from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.config import RunConfig
from engine.session import LOOKAHEAD_WARNING
from sentinel.db import Store
from tests.conftest import make_demo_db
from tests.future import scramble_after


def _cfg(**over) -> RunConfig:
    base = {
        "name": "t",
        "start": "2016-06-01",
        "end": "2017-06-30",
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 4}},
        "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
               "retrain": "quarterly", "min_samples": 20, "max_epochs": 3},
        "costs": {"commission_bps": 5, "min_commission": 1, "slippage_bps": 5},
        "initial_cash": 100_000,
    }  # fmt: skip
    for k, v in over.items():
        base[k] = v
    return RunConfig.model_validate(base)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("bt"), 11, 8, "2015-01-01", "2017-12-31")


@pytest.fixture(scope="module")
def wf_result(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    store = Store(f"sqlite:///{demo_db}")
    return run_backtest(_cfg(), store=store, output=out), out, store


def test_outputs_and_stored_run(wf_result):
    result, out, store = wf_result
    for name in ("metrics.json", "trades.csv", "equity.csv", "report.html", "predictions.csv"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_retrains"] == 5  # 2016Q2 .. 2017Q2
    assert result.log.retrains[0] == date(2016, 6, 3)
    run = store.records.get_backtest_run(result.db_id)
    assert run.config_hash == result.config.config_hash()
    assert run.metrics["sharpe_ratio"] == pytest.approx(metrics["sharpe_ratio"])
    assert "Demo" not in (out / "trades.csv").read_text()[:100]
    preds = result.predictions
    assert preds["ml_score"].notna().any()  # the models were used ...
    assert (preds["model_id"].dropna().str.startswith("walk_forward:")).all()
    assert set(preds["fallback"].dropna()) <= {"no model", "ml disabled for symbol", "no features"}


def test_ledger_invariants(wf_result):
    result, _, _ = wf_result
    eq = result.equity
    assert (eq["cash"] >= -1e-6).all()  # no overdraft
    assert (result.weights.fillna(0) >= 0).all().all()  # long only
    trades = result.trades
    decided = {o.order_id for o in result.log.orders}
    settled = {
        f.order_id for f in result.log.settlements
    }  # delisted holdings, closed at last price
    assert set(trades["order_id"]) <= decided | settled
    trades = trades[~trades["order_id"].isin(settled)]
    # every fill happens after the day its order was decided (next open)
    decided_on = {o.order_id: o.decided_on for o in result.log.orders}
    assert all(row.date.date() > decided_on[row.order_id] for row in trades.itertuples())
    costs = trades["commission"].sum() + trades["slippage"].sum()
    assert costs > 0


def test_walk_forward_models_only_see_known_labels(wf_result):
    result, _, store = wf_result
    for d in result.log.retrains:
        known = store.signals.get_training_samples(known_by=d)
        later = store.signals.get_training_samples()
        assert (known["label_known_at"] <= pd.Timestamp(d)).all()
        assert len(later) > len(known)


def test_future_scrambled_after_t_changes_nothing_before_t(demo_db, tmp_path):
    """Run the same config on the store and on a copy whose bars after T are scrambled."""
    t = date(2016, 12, 30)
    copy = tmp_path / "future.db"
    shutil.copy(demo_db, copy)
    other = Store(f"sqlite:///{copy}")
    with other.db.transaction() as conn:
        scramble_after(other, "prices", t, 4242, conn)
        scramble_after(other, "benchmark_prices", t, 4242, conn)
    a = run_backtest(_cfg(end="2017-03-31"), store=Store(f"sqlite:///{demo_db}"), save=False)
    b = run_backtest(_cfg(end="2017-03-31"), store=other, save=False)
    days = [d for d in a.log.decisions if d <= t]
    assert len(days) > 20
    for d in days:
        pd.testing.assert_series_equal(a.log.decisions[d], b.log.decisions[d], obj=str(d))
    ta, tb = a.trades[a.trades.date <= pd.Timestamp(t)], b.trades[b.trades.date <= pd.Timestamp(t)]
    pd.testing.assert_frame_equal(ta.reset_index(drop=True), tb.reset_index(drop=True))
    ea, eb = a.equity.loc[: pd.Timestamp(t)], b.equity.loc[: pd.Timestamp(t)]
    pd.testing.assert_frame_equal(ea, eb)
    # ... and the scramble did change what came after T.
    assert not np.allclose(a.equity["equity"].iloc[-1], b.equity["equity"].iloc[-1])


def test_current_mode_is_flagged_and_off_mode_uses_wavelet_only(demo_db, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "nomodels"))
    from sentinel.settings import get_settings

    get_settings.cache_clear()
    store = Store(f"sqlite:///{demo_db}")
    cur = run_backtest(_cfg(end="2016-09-30", ml={"mode": "current"}), store=store, save=False)
    assert LOOKAHEAD_WARNING in cur.warnings
    off = run_backtest(_cfg(end="2016-09-30", ml={"mode": "off"}), store=store, save=False)
    assert off.predictions["ml_score"].isna().all()
    assert (off.predictions["blended_score"] == off.predictions["wavelet_score"]).all()
    assert off.log.retrains == []
    get_settings.cache_clear()


def test_momentum_baseline_runs_without_ml(demo_db):
    cfg = _cfg(strategy={"name": "momentum", "params": {"n": 3, "lookback": 60}},
               ml={"enabled": False}, rebalance={"every": "monthly"})  # fmt: skip
    result = run_backtest(cfg, store=Store(f"sqlite:///{demo_db}"), save=False)
    assert len(result.trades) > 0
    assert result.metrics["n_retrains"] == 0


def test_a_delisted_holding_is_settled_at_its_last_price(demo_db):
    store = Store(f"sqlite:///{demo_db}")
    gone = [s for s in store.market.securities() if s.universe_to is not None]
    assert gone, "the demo universe has a delisting"
    cfg = _cfg(end="2017-12-29", strategy={"name": "top_n", "params": {"n": 8}},
               ml={"enabled": False})  # fmt: skip
    result = run_backtest(cfg, store=store, save=False)
    sym, last = gone[0].symbol, gone[0].universe_to
    settled = result.trades[result.trades["order_id"].str.endswith(":delisted")]
    assert list(settled["symbol"]) == [sym]
    assert settled["date"].iloc[0].date() > last
    last_close = store.market.get_prices(sym, days=1, end_date=last)["close"].iloc[-1]
    assert settled["price"].iloc[0] == pytest.approx(last_close)
    assert sym not in result.weights.iloc[-1][result.weights.iloc[-1] > 0].index
    assert (result.equity["cash"] >= -1e-6).all()
