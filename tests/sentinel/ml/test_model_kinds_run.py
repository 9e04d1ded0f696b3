"""ml.model / ml.target as run-config and settings keys, and a walk-forward run that uses them."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest

from engine.config import RunConfig, load_config
from sentinel.errors import ConfigError

BASE = """\
name: t
start: 2019-01-01
end: 2020-01-01
ml:
  blend_ratio: 0.4
"""


def test_config_keys_parse_sweep_and_name_a_bad_value(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(BASE + "  model: pooled\n  target: rank\n")
    cfg = load_config(p)
    assert (cfg.ml.model, cfg.ml.target) == ("pooled", "rank")
    assert cfg.with_updates({"ml.model": "hierarchical"}).ml.model == "hierarchical"  # sweepable
    p.write_text(BASE + "  model: global\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "ml.model (line 6)" in msg and "per_symbol" in msg and len(msg.splitlines()) == 1


def test_settings_fill_model_and_target_a_config_leaves_out(store, monkeypatch):
    from engine.session import ml_policy, resolve_config, run_settings
    from sentinel.settings import get_settings

    monkeypatch.setenv("SENTINEL_ML_MODEL", "pooled")
    monkeypatch.setenv("SENTINEL_ML_TARGET", "excess")
    get_settings.cache_clear()
    try:
        settings = run_settings(store)
        cfg = RunConfig.model_validate({"start": "2019-01-01", "end": "2020-01-01"})
        eff = resolve_config(cfg, settings)
        assert (eff.ml.model, eff.ml.target) == ("pooled", "excess")
        own = resolve_config(cfg.with_updates({"ml.target": "rank"}), settings)
        policy = ml_policy(own, settings)
        assert (policy.model, policy.target) == ("pooled", "rank")
    finally:
        get_settings.cache_clear()


def _cfg(end: date) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "kinds",
            "start": "2016-09-01",
            "end": end.isoformat(),
            "rebalance": {"every": "weekly", "weekday": "friday"},
            "strategy": {"name": "top_n", "params": {"n": 3}},
            "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "walk_forward",
                   "retrain": "quarterly", "min_samples": 20, "max_epochs": 2,
                   "model": "hierarchical", "target": "rank", "label_from": "next_open"},
            "initial_cash": 100_000,
        }
    )  # fmt: skip


def test_hierarchical_walk_forward_uses_the_pool_and_ignores_the_future(tmp_path):
    from engine.backtest import run_backtest
    from sentinel.db import Store
    from tests.conftest import make_demo_db
    from tests.future import scramble_after

    db = make_demo_db(tmp_path, 6, 8, "2015-01-01", "2017-06-30")
    t = date(2016, 12, 30)
    copy = tmp_path / "future.db"
    shutil.copy(db, copy)
    other = Store(f"sqlite:///{copy}")
    with other.db.transaction() as conn:
        scramble_after(other, "prices", t, 99, conn)
        scramble_after(other, "benchmark_prices", t, 99, conn)
    a = run_backtest(_cfg(date(2017, 3, 31)), store=Store(f"sqlite:///{db}"), save=False)
    b = run_backtest(_cfg(date(2017, 3, 31)), store=other, save=False)
    preds = a.predictions
    used = preds["model_id"].dropna()
    assert len(used) and used.str.startswith("walk_forward:hierarchical:").all()
    assert preds["ml_score"].notna().all()  # the pool scores every symbol
    days = [d for d in a.log.decisions if d <= t]
    assert len(days) > 10
    for d in days:
        pd.testing.assert_series_equal(a.log.decisions[d], b.log.decisions[d], obj=str(d))
    pa = preds[pd.to_datetime(preds["date"]) <= pd.Timestamp(t)].reset_index(drop=True)
    pb = b.predictions[pd.to_datetime(b.predictions["date"]) <= pd.Timestamp(t)]
    pd.testing.assert_frame_equal(pa, pb.reset_index(drop=True))
