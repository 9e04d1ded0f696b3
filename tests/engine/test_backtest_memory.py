"""A backtest keeps no retrain's networks for a report it does not write (issue 13: memory)."""

from __future__ import annotations

import pytest

import engine.backtest as backtest
from engine.backtest import run_backtest
from engine.config import RunConfig
from engine.nn_importance import NetworkImportance
from sentinel.db import Store
from tests.conftest import make_demo_db


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("mem"), 11, 6, "2015-01-01", "2016-12-31")


def test_networks_are_kept_only_when_the_report_is_written(small_db, monkeypatch):
    kept: list[NetworkImportance] = []

    class Spy(NetworkImportance):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            kept.append(self)

    monkeypatch.setattr(backtest, "NetworkImportance", Spy)
    cfg = RunConfig.model_validate({
        "name": "t", "start": "2016-06-01", "end": "2016-12-31",
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 3}},
        "ml": {"enabled": True, "mode": "walk_forward", "retrain": "quarterly",
               "min_samples": 20, "max_epochs": 2},
    })  # fmt: skip
    result = run_backtest(cfg, store=Store(f"sqlite:///{small_db}"), save=False)
    assert result.log.retrains and result.predictions["ml_score"].notna().any()  # models ran
    assert len(kept) == 1 and kept[0].networks == {} and kept[0].day is None
