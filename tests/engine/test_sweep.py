"""Sweeps: points equal standalone runs, scores computed once, finished points kept, failures
isolated, bad input refused before anything runs, and the same results on a Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.sweep import SweepConfig, expand, load_sweep
from engine.sweep_run import run_sweep
from sentinel.db import Store
from sentinel.errors import ConfigError
from tests.conftest import make_demo_db

BASE = {
    "name": "s",
    "start": "2016-06-01",
    "end": "2017-03-31",
    "strategy": {"name": "top_n", "params": {"n": 3}},
    "ml": {"blend_ratio": 0.3, "mode": "walk_forward", "retrain": "quarterly",
           "min_samples": 20, "max_epochs": 3},
    "initial_cash": 100_000,
}  # fmt: skip


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    return make_demo_db(tmp_path_factory.mktemp("sw"), 13, 8, "2015-01-01", "2017-12-31")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path_factory, monkeypatch):
    from sentinel.settings import get_settings

    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _sweep(**over) -> SweepConfig:
    data = {"name": "t", "base": BASE, "grid": {"ml.blend_ratio": [0.0, 0.5, 1.0]},
            "executor": {"kind": "local", "workers": 1}}  # fmt: skip
    data.update(over)
    return SweepConfig.model_validate(data)


def test_points_equal_standalone_runs_and_scores_are_shared(demo_db, tmp_path):
    store = Store(f"sqlite:///{demo_db}")
    res = run_sweep(_sweep(), store=store, output=tmp_path)
    assert len(res.points) == 3 and not res.failed
    assert res.cache_misses == 1 and res.cache_hits == 0  # one score pass for three ratios
    point = next(p for p in res.points if p["changes"]["ml.blend_ratio"] == 0.5)
    cfg = expand(_sweep())[1].config
    alone = run_backtest(cfg, store=store, save=False)
    assert point["equity"]["values"] == [round(float(v), 2) for v in alone.equity["equity"]]
    assert point["metrics"]["sharpe_ratio"] == pytest.approx(alone.metrics["sharpe_ratio"])
    ends = {p["changes"]["ml.blend_ratio"]: p["metrics"]["cagr"] for p in res.points}
    assert ends[0.0] != ends[1.0]  # the ratio matters
    for name in ("sweep.csv", "sweep.json", "sweep.html"):
        assert (tmp_path / name).exists()
    html = (tmp_path / "sweep.html").read_text()
    assert "pure wavelet" in html and "pure ML" in html and "In-sample" in html
    runs = store.records.list_backtest_runs(sweep_id=res.sweep_id)
    assert len(runs) == 3
    again = run_sweep(_sweep(), store=store, output=tmp_path)
    assert again.skipped == 3 and len(again.points) == 3  # finished points are kept
    assert len(store.records.list_backtest_runs(sweep_id=res.sweep_id)) == 3


def test_failing_point_is_reported_and_the_others_finish(demo_db, tmp_path):
    sw = _sweep(grid={}, variants=[
        {"name": "ok", "set": {"ml.enabled": False}},
        {"name": "bad", "set": {"ml.enabled": False, "universe.kind": "list",
                                "universe.symbols": ["NOPE"]}},
    ])  # fmt: skip
    res = run_sweep(sw, store=Store(f"sqlite:///{demo_db}"), output=tmp_path)
    assert [p["label"] for p in res.points] == ["ok"]
    assert [f["label"] for f in res.failed] == ["bad"] and "NOPE" in res.failed[0]["error"]
    assert json.loads((tmp_path / "sweep.json").read_text())["failed"][0]["label"] == "bad"


def test_selection_and_test_periods_are_reported_separately(demo_db, tmp_path):
    sw = _sweep(selection={"start": "2016-06-01", "end": "2016-12-30"},
                test={"start": "2017-01-02", "end": "2017-06-30"},
                grid={"ml.blend_ratio": [0.0, 1.0]})  # fmt: skip
    res = run_sweep(sw, store=Store(f"sqlite:///{demo_db}"), output=tmp_path)
    assert sorted(p["period"] for p in res.points) == ["selection"] * 2 + ["test"] * 2
    assert res.selected is not None and res.selected["test"] is not None
    assert "out-of-sample" in (tmp_path / "sweep.html").read_text()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"grid": {"ml.blend_ratoi": [0.1]}}, "ml.blend_ratoi"),
        ({"grid": {"ml.blend_ratio": [0.1, 2.0]}}, "ml.blend_ratio"),
        ({"grid": {"strategy.params.n": ["ten"]}}, "params.n"),
        ({"grid": {"nope.x": [1]}}, "nope"),
    ],
)
def test_bad_grid_fails_before_any_point_runs(over, message):
    with pytest.raises(ConfigError, match=message):
        expand(_sweep(**over))


def test_load_sweep_resolves_base_file_and_names_lines(tmp_path):
    (tmp_path / "base.yaml").write_text("start: 2016-06-01\nend: 2017-01-01\n")
    (tmp_path / "s.yaml").write_text("base: base.yaml\ngrid:\n  ml.blend_ratio: [0.1, 0.2]\n")
    assert len(expand(load_sweep(tmp_path / "s.yaml"))) == 2
    (tmp_path / "bad.yaml").write_text("base: base.yaml\ngrid: {}\nexecutor: {kind: spark}\n")
    with pytest.raises(ConfigError, match=r"executor.kind \(line 3\)"):
        load_sweep(tmp_path / "bad.yaml")
    shipped = load_sweep(Path("configs/blend_sweep.yaml"))
    assert len(expand(shipped)) == 22


def test_unreachable_dask_address_is_a_clear_error(demo_db, tmp_path):
    sw = _sweep(executor={"kind": "dask", "address": "tcp://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        run_sweep(sw, store=Store(f"sqlite:///{demo_db}"), output=tmp_path)


def test_dask_local_cluster_gives_identical_results(demo_db, tmp_path):
    store = Store(f"sqlite:///{demo_db}")
    local = run_sweep(_sweep(), store=store, output=tmp_path / "local")
    dask = run_sweep(_sweep(executor={"kind": "dask", "workers": 2}), store=store,
                     output=tmp_path / "dask")  # fmt: skip
    a = pd.DataFrame(local.table()).sort_values("point").reset_index(drop=True)
    b = pd.DataFrame(dask.table()).sort_values("point").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
