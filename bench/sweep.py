"""Sweep workloads: an 11-point blend sweep against one backtest of the same config."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date
from pathlib import Path

from bench._harness import Result, shared, workload


def _setup(tmp: Path, n_symbols: int = 100):
    """A store with ``n_symbols`` of the real 5-year file, their samples and current models."""
    from sentinel.data.importer import import_files
    from sentinel.db import Store
    from sentinel.ml.dataset import FeatureBook, generate_samples
    from sentinel.ml.training import save_models, train_as_of
    from sentinel.settings import get_settings

    os.environ["SENTINEL_DATA_DIR"] = str(tmp / "data")
    get_settings.cache_clear()
    store = Store(f"sqlite:///{tmp / 'bench.db'}")
    import_files(store, [shared("sp500_5y_prices.csv.gz")], skip_bad=True)
    import_files(store, [shared("benchmarks.csv.gz")], kind="benchmark")
    import_files(store, [shared("sectors.csv")], skip_bad=True)
    symbols = [s for s in store.market.universe_symbols(date(2013, 6, 3))][:n_symbols]
    book = FeatureBook(store, symbols)
    generate_samples(store, symbols, book=book)
    report = train_as_of(store, symbols=symbols, min_samples=52, validate=False)
    save_models(store, report, get_settings().models_dir)
    return store, symbols


def _config(symbols: list[str]):
    from engine.config import RunConfig

    return RunConfig.model_validate({
        "name": "bench", "start": "2013-01-02", "end": "2017-12-06",
        "universe": {"kind": "list", "symbols": symbols},
        "rebalance": {"every": "weekly"}, "strategy": {"name": "top_n", "params": {"n": 20}},
        "ml": {"mode": "current", "blend_ratio": 0.3}, "benchmark": "SPY",
    })  # fmt: skip


@workload("sweep")
def sweep() -> list[Result]:
    """11-point blend sweep, 100 symbols x 5 years, ML current: <= 2x one backtest; speedups."""
    from engine.backtest import run_backtest
    from engine.sweep import SweepConfig
    from engine.sweep_run import run_sweep

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        store, symbols = _setup(tmp)
        cfg = _config(symbols)
        run_backtest(cfg.with_updates({"end": "2013-03-01"}), store=store, save=False)  # warm-up
        t = time.perf_counter()
        run_backtest(cfg, store=store, save=False)
        one = time.perf_counter() - t
        base = cfg.model_dump(mode="json")
        grid = {"ml.blend_ratio": [round(0.1 * i, 1) for i in range(11)]}

        def timed_sweep(name: str, executor: dict) -> float:
            sw = SweepConfig.model_validate({"name": name, "base": base, "grid": grid,
                                             "executor": executor})  # fmt: skip
            t0 = time.perf_counter()
            res = run_sweep(sw, store=store, output=tmp / name)
            assert not res.failed, res.failed
            return time.perf_counter() - t0

        cold = timed_sweep("w1", {"kind": "local", "workers": 1})  # computes the score cache
        warm1 = timed_sweep("w1b", {"kind": "local", "workers": 1})
        warm2 = timed_sweep("w2", {"kind": "local", "workers": 2})
        dask2 = timed_sweep("d2", {"kind": "dask", "workers": 2})
    n = len(symbols)
    return [
        Result("sweep", f"11-point blend sweep, {n} symbols x 5y, 1 worker (seconds)", cold,
               "s", 2.0 * one, one, "target: <= 2x one backtest (reference = one backtest)"),
        Result("sweep", "11 points with scores cached, 2 local workers (seconds)", warm2, "s",
               None, warm1, f"speedup vs 1 worker: {warm1 / warm2:.2f}x"),
        Result("sweep", "11 points with scores cached, Dask local cluster of 2 (seconds)",
               dask2, "s", None, warm1, f"speedup vs 1 worker: {warm1 / dask2:.2f}x"),
    ]  # fmt: skip
