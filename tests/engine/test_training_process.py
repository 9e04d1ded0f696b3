"""A walk-forward run trains its networks in the training process, with the results of training
them in this one (sentinel.ml.nn_worker; engine.session starts it)."""

from __future__ import annotations

import shutil

import pandas as pd

from engine.backtest import run_backtest
from engine.config import RunConfig
from sentinel.db import Store
from sentinel.ml import nn_worker
from tests.conftest import make_demo_db

CFG = {
    "name": "tp", "start": "2016-06-01", "end": "2016-12-30",
    "rebalance": {"every": "weekly", "weekday": "friday"},
    "strategy": {"name": "top_n", "params": {"n": 3}},
    "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward", "retrain": "quarterly",
           "min_samples": 20, "max_epochs": 3},
}  # fmt: skip


def test_a_walk_forward_run_trains_in_the_training_process_with_the_same_results(
    tmp_path, monkeypatch
):
    db = make_demo_db(tmp_path, 11, 6, "2015-01-01", "2016-12-31")
    shutil.copy(db, tmp_path / "b.db")
    cfg = RunConfig.model_validate(CFG)
    calls: list[int] = []
    fit = nn_worker.NNWorker.run_epochs

    def counted(self, *args, **kwargs):
        calls.append(len(args[3]))  # the stack's size
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(nn_worker.NNWorker, "run_epochs", counted)
    there = run_backtest(cfg, store=Store(f"sqlite:///{db}"), save=False)
    assert calls and there.metrics["n_retrains"] == 3  # every retrain's passes went there
    n = len(calls)

    def refused(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(nn_worker, "start", refused)  # the session falls back to this process
    here = run_backtest(cfg, store=Store(f"sqlite:///{tmp_path / 'b.db'}"), save=False)
    assert len(calls) == n
    assert here.predictions["ml_score"].notna().any()
    pd.testing.assert_frame_equal(there.predictions, here.predictions, check_exact=True)
    pd.testing.assert_frame_equal(there.equity, here.equity, check_exact=True)
    pd.testing.assert_frame_equal(there.trades, here.trades, check_exact=True)
