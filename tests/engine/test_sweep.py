"""Sweeps: points equal standalone runs, scores computed once, finished points kept, failures
isolated, bad input refused before anything runs, and the same results on a Dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from engine.backtest import run_backtest
from engine.sweep import SweepConfig, expand, load_sweep
from engine.sweep_run import run_sweep
from sentinel.db import Store
from sentinel.errors import ConfigError
from tests.conftest import make_demo_db
from tests.procs import alive, children

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


@pytest.fixture(scope="module")
def local_sweep(demo_db, tmp_path_factory):
    """``(result, output folder)`` of :func:`_sweep` run once on the demo store with the local
    executor: a three-point walk-forward sweep that two tests read (neither changes it)."""
    from sentinel.settings import get_settings

    out = tmp_path_factory.mktemp("local_sweep")
    with pytest.MonkeyPatch.context() as mp:  # as _data_dir, which runs after module fixtures
        mp.setenv("SENTINEL_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data"))
        get_settings.cache_clear()
        try:
            res = run_sweep(_sweep(), store=Store(f"sqlite:///{demo_db}"), output=out)
        finally:
            get_settings.cache_clear()
    return res, out


def test_points_equal_standalone_runs_and_scores_are_shared(demo_db, local_sweep):
    store = Store(f"sqlite:///{demo_db}")
    res, tmp_path = local_sweep
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


# -- hardening (issue 15): bombs refused in bounded time and memory; errors name file and line ----
SWEEP_HEAD = "base: {start: 2019-01-01, end: 2020-01-01}\ngrid:\n"


def _bounded(path: Path, *expected: str, seconds: float = 2.0, peak_mb: float = 20) -> str:
    """load_sweep refuses ``path`` with a one-line ConfigError, within a time and memory budget."""
    import tracemalloc

    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as exc:
            expand(load_sweep(path))
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    msg = str(exc.value)
    assert str(path) in msg and len(msg.splitlines()) == 1, msg
    for part in expected:
        assert part in msg, msg
    assert elapsed < seconds and peak < peak_mb * 1e6, (elapsed, peak, msg)
    return msg


def test_alias_bomb_in_a_grid_is_refused_in_bounded_time_and_memory(tmp_path):
    # 8 levels of 9 aliases: the last grid value stands for 9**8 = 43 million leaves (352 bytes).
    lines = ["    - &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"    - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text(SWEEP_HEAD + "  seed:\n" + "\n".join(lines) + "\n")
    _bounded(path, "grid.seed[", "aliases", "line")


def test_grid_point_bomb_is_refused_before_expanding(tmp_path):
    # 8 keys sharing one 9-value list: 9**8 = 43 million points from 250 bytes.
    keys = ["ml.max_epochs", "strategy.params.n", "data.demo_seed", "ml.horizon_days",
            "ml.min_samples", "initial_cash", "costs.commission_bps"]  # fmt: skip
    text = SWEEP_HEAD + "  seed: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    path = tmp_path / "grid.yaml"
    path.write_text(text + "".join(f"  {k}: *a\n" for k in keys))
    _bounded(path, "grid (line 2)", "43,046,721 points", "10,000")


def test_point_cap_counts_grid_and_variants_before_expanding():
    from engine.sweep import MAX_SWEEP_POINTS

    assert MAX_SWEEP_POINTS == 10_000
    grid = {"seed": list(range(100)), "data.demo_seed": list(range(100))}
    assert _sweep(grid=grid).grid == grid  # exactly the limit: accepted (not expanded here)
    with pytest.raises(ValueError, match="10,001 points"):
        _sweep(grid=grid, variants=[{"name": "one more", "set": {"seed": 1}}])


def test_each_point_is_validated_before_the_next_is_labelled():
    big: list = [1] * 9
    for _ in range(7):
        big = [big] * 9  # 43 million leaves, shared: cheap to hold, ruinous to print
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"seed=x"):
        expand(_sweep(grid={"seed": ["x", big]}))
    assert time.perf_counter() - t0 < 1.0


def test_labels_are_short_and_unique():
    long = [f"S{i}" for i in range(500)]
    grid = {"universe.symbols": [long, [*long[:-1], "OTHER"]], "universe.kind": ["list"]}
    labels = [p.label for p in expand(_sweep(grid=grid))]
    assert len(set(labels)) == 2 and all(len(x) < 200 for x in labels), labels


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  ml.blend_ratio: [0.1, 2.0]\n", "grid.ml.blend_ratio[1] (line 3)"),
        ("  strategy.params.n: [3, true]\n", "grid.strategy.params.n[1] (line 3)"),
        ("  ml.blend_ratio: [0.1]\n  ml.blend_ratio: [0.2]\n", "lines 3 and 4"),
        ("  seed: [1]\nselection: {start: 2019-02-30, end: 2019-06-01}\n",
         "selection.start (line 4)"),
        ("  seed: [1]\nexecutor: {workers: true}\n", "executor.workers (line 4)"),
        ("  universe.symbols: [[AAPL], [aapl]]\n  universe.kind: [list]\n",
         "grid.universe.symbols[1] (line 3)"),
        ("  seed: [1]\nvariants: [{name: v, set: {ml.blend_ratio: yes}}]\n",
         "variants[0].set.ml.blend_ratio (line 4)"),
    ],
)  # fmt: skip
def test_bad_sweep_values_name_file_key_and_line(tmp_path, body, expected):
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP_HEAD + body)
    _bounded(path, expected)


def test_bad_base_file_names_both_files(tmp_path):
    (tmp_path / "base.yaml").write_bytes(b"start: 2019-01-01\nend: \xff\n")
    path = tmp_path / "s.yaml"
    path.write_text("base: base.yaml\ngrid: {seed: [1]}\n")
    _bounded(path, "base (line 1)", str(tmp_path / "base.yaml"), "UTF-8")
    path.write_text('base: "nul\\0.yaml"\ngrid: {seed: [1]}\n')
    _bounded(path, "base (line 1)")


def test_unreachable_dask_address_is_a_clear_error(demo_db, tmp_path, quick_dask_refusal):
    sw = _sweep(executor={"kind": "dask", "address": "tcp://127.0.0.1:9"})
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        run_sweep(sw, store=Store(f"sqlite:///{demo_db}"), output=tmp_path)


def test_dask_local_cluster_gives_identical_results(demo_db, local_sweep, tmp_path):
    store = Store(f"sqlite:///{demo_db}")
    local = local_sweep[0]
    dask = run_sweep(_sweep(executor={"kind": "dask", "workers": 2}), store=store,
                     output=tmp_path / "dask")  # fmt: skip
    a = pd.DataFrame(local.table()).sort_values("point").reset_index(drop=True)
    b = pd.DataFrame(dask.table()).sort_values("point").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


# -- the worker processes end with the sweep ----------------------------------------------------
KILL_SWEEP = """
name: k
base:
  name: k
  start: 2016-09-01
  end: 2016-12-30
  strategy: {name: top_n, params: {n: 3}}
  ml: {enabled: false}
  initial_cash: 100000
grid:
  strategy.params.n: [1, 2, 3, 4, 5, 6, 7, 8]
  costs.slippage_bps: [0, 5, 10]
executor: {kind: local, workers: 2}
"""


def _start_sweep(demo_db: Path, tmp_path: Path, **popen) -> tuple[subprocess.Popen, Path, dict]:
    """``sentinel sweep`` in a subprocess; returns once both workers run and one point is done."""
    db = tmp_path / "kill.db"
    shutil.copy(demo_db, db)
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(KILL_SWEEP)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cli", "--db", f"sqlite:///{db}", "sweep", str(cfg),
           "--output", str(out)]  # fmt: skip
    err = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115 - the child writes it until it ends
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, **popen)
    deadline = time.time() + 180
    workers: dict[int, bytes] = {}
    while time.time() < deadline and proc.poll() is None:
        workers = {k: c for k, c in children(proc.pid).items() if b"spawn_main" in c}
        if len(workers) == 2 and any((out / "points").glob("*.json")):
            return proc, out, children(proc.pid)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(
        f"the sweep did not start its workers: {(tmp_path / 'stderr.txt').read_text()}"
    )


def _wait_gone(pids, seconds: float) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for p in left:  # do not leave them running for the rest of the suite
        os.kill(p, signal.SIGKILL)
    return left


def test_sigkill_of_the_sweep_kills_its_workers(demo_db, tmp_path):
    proc, out, kids = _start_sweep(demo_db, tmp_path)
    assert sum(b"spawn_main" in c for c in kids.values()) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = sorted(p.name for p in (out / "points").glob("*.json"))
    assert _wait_gone(kids, 10) == []  # workers and the resource tracker
    time.sleep(1.0)
    assert sorted(p.name for p in (out / "points").glob("*.json")) == kept  # nothing ran on


def test_ctrl_c_stops_the_workers_and_says_what_was_kept(demo_db, tmp_path):
    # a job started in the background (as CI or `make test &` may run the suite) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: give the child a terminal's default
    proc, out, kids = _start_sweep(
        demo_db, tmp_path, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    proc.wait(timeout=60)
    stderr = " ".join((tmp_path / "stderr.txt").read_text().split())
    assert _wait_gone(kids, 5) == []
    kept = len(list((out / "points").glob("*.json")))
    assert proc.returncode == 130, stderr
    assert f"stopped: {kept} of 24 points finished and kept in {out / 'points'}" in stderr
    assert "Traceback" not in stderr


def test_every_ml_key_that_changes_scores_is_in_the_score_key():
    """A grid over ml.model (or target, label_from, select_every, features) must not replay one
    variant's cached scores for another: only the blend ratio and the training executor, which
    leave the scores unchanged, are left out of the key."""
    from engine.config import validate_config
    from engine.sweep import score_key

    base = validate_config({**BASE, "ml": {**BASE["ml"], "model": "per_symbol",
                                           "target": "return"}})  # fmt: skip
    key = score_key(base, base.start, base.end, {})
    changed = {
        "ml.model": "pooled", "ml.target": "excess", "ml.label_from": "next_open",
        "ml.select_every": 3, "ml.features": ["default", "return_120d"], "ml.max_epochs": 7,
    }  # fmt: skip
    for path, value in changed.items():
        other = base.with_updates({path: value})
        assert score_key(other, other.start, other.end, {}) != key, path
    same = base.with_updates({"ml.blend_ratio": 0.9, "ml.train_executor.kind": "dask"})
    assert score_key(same, same.start, same.end, {}) == key


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_stop_pool_returns_with_the_manager_thread_done():
    """Left running past ``_stop_pool``, the executor's manager thread races the interpreter's
    exit hook on its wake-up pipe ("Bad file descriptor" after a Ctrl-C, seen once in CI)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from engine.sweep_run import _stop_pool

    pool = ProcessPoolExecutor(2, mp_context=mp.get_context("spawn"))
    futures = [pool.submit(_sleep, 60) for _ in range(4)]
    deadline = time.time() + 60
    while time.time() < deadline and not any(f.running() for f in futures):
        time.sleep(0.05)
    manager = pool._executor_manager_thread
    assert manager is not None and manager.is_alive()
    procs = list(pool._processes.values())
    _stop_pool(pool)
    assert not manager.is_alive()
    assert not any(p.is_alive() for p in procs)
    assert all(f.done() for f in futures)
