"""Running a sweep: score caches first, then every point on an executor, each stored at once.

A point that fails is reported and the others finish. Every finished point is written to
``{output}/points/{key}.json`` and to the database as it completes, so a rerun skips it and an
interrupted sweep loses nothing that had finished. The local pool's workers end with the sweep
process, even on ``kill -9`` (:func:`sentinel.lifeline.tie_to_parent`); Ctrl-C stops them and
raises :class:`SweepInterrupted`, whose message says how many points are kept and where.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

from engine.backtest import run_backtest
from engine.config import RunConfig
from engine.session import ensure_samples, resolve_config, run_settings
from engine.sweep import (
    ReplayPlanner,
    SweepConfig,
    cached_scores,
    expand,
    score_key,
    store_fingerprint,
)
from engine.sweep_report import benchmark_curves, write_sweep_outputs
from engine.sweep_types import SweepResult
from sentinel.db import Store
from sentinel.errors import ConfigError
from sentinel.lifeline import tie_to_parent
from sentinel.settings import get_settings


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one point (in any process): replay its cached scores, store the result at once."""
    started = time.perf_counter()
    out = {k: task[k] for k in ("key", "label", "changes", "period")}
    try:
        cfg = RunConfig.model_validate(task["config"])
        store = Store(task["db_url"])
        planner = None
        if task.get("scores_path"):
            scores = pd.read_parquet(task["scores_path"])
            ratio = cfg.ml.blend_ratio if cfg.ml.active else 0.0
            planner = ReplayPlanner(scores, ratio)
        folder = Path(task["points_dir"]).parent if task.get("points_dir") else None
        result = run_backtest(cfg, store=store, planner=planner, sweep_id=task["sweep_id"],
                              save=True, write_report=False, report_folder=folder)  # fmt: skip
        eq = result.equity["equity"]
        out.update(
            metrics=result.metrics, db_id=result.db_id, warnings=result.warnings,
            equity={"dates": [d.strftime("%Y-%m-%d") for d in eq.index],
                    "values": [round(float(v), 2) for v in eq.to_numpy()]},
            seconds=time.perf_counter() - started,
        )  # fmt: skip
        store.engine.dispose()
    except Exception as exc:  # noqa: BLE001 - one failing point must not stop the sweep
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    if task.get("points_dir") and "error" not in out:
        path = Path(task["points_dir"]) / f"{task['key']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, default=str))
        tmp.replace(path)
    return out


def sweep_id_of(sweep: SweepConfig) -> str:
    blob = json.dumps(sweep.model_dump(mode="json"), sort_keys=True, default=str)
    return f"{sweep.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: the workers are stopped; the message says what was kept."""


# -- executors ---------------------------------------------------------------------------------
def _worker_init(parent_pid: int) -> None:
    """Each pool worker: die with the sweep process (even a kill -9 of it); Ctrl-C is its job."""
    tie_to_parent(parent_pid)
    # a terminal's Ctrl-C reaches the whole process group: the parent stops the pool and reports
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_pool(pool: Any) -> None:
    """Kill the workers now (queued points are dropped; finished ones are already stored).

    The executor's manager thread is joined before returning: left running, it closes its
    wake-up pipe while the interpreter's exit hook writes to it unlocked (CPython 3.11
    ``_python_exit``), which printed "Bad file descriptor" after a Ctrl-C now and then."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    for proc in procs:
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.join(5)
    if manager is not None:
        manager.join(10)  # bounded: it sees the dead workers, fails their futures and exits


def _local(tasks: list[dict], workers: int) -> Iterator[dict]:
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield run_point(t)
        return
    # spawn, not fork: the parent may have TensorFlow threads running (walk-forward training).
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))  # fmt: skip
    try:
        futures = [pool.submit(run_point, t) for t in tasks]
        for f in as_completed(futures):
            yield f.result()
    except BaseException:  # Ctrl-C, the consumer closing the stream, a broken pool
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def connect_dask(address: str | None, workers: int, key: str = "executor.address"):
    """A Dask client: to ``address``, or to a new local cluster; unreachable is a clear error
    naming the config ``key`` (the sweeps' executor, or a run's ml.train_executor)."""
    from distributed import Client, LocalCluster  # lazy: Dask, only for executor kind dask

    if address:
        try:
            return Client(address, timeout="5s"), None
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"{key}: cannot reach the Dask scheduler at {address} ({exc})"
            ) from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    return Client(cluster), cluster


def _dask(tasks: list[dict], client) -> Iterator[dict]:
    from distributed import as_completed  # lazy: Dask

    futures = client.map(run_point, tasks, pure=False)
    for f in as_completed(futures):
        yield f.result()


# -- the sweep ---------------------------------------------------------------------------------
def run_sweep(
    sweep: SweepConfig,
    *,
    store: Store,
    output: str | Path | None = None,
    status: Callable[[str], None] = lambda msg: None,
    on_point: Callable[[dict[str, Any], int, int], None] | None = None,
    client: Any = None,
) -> SweepResult:
    """Run every point of ``sweep`` (skipping finished ones) and write the results."""
    # points leave no ml key to the settings: each worker replays exactly the ratio it names
    sweep = sweep.model_copy(update={"base": resolve_config(sweep.base, run_settings(store))})
    points = expand(sweep)
    sid = sweep_id_of(sweep)
    out = Path(output or sweep.output or f"runs/{sweep.name}")
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    db_url = store.engine.url.render_as_string(hide_password=False)
    owned = None
    if sweep.executor.kind == "dask" and client is None:
        client, owned = connect_dask(sweep.executor.address, sweep.executor.workers)
    result = SweepResult(sweep, sid, [])
    stream: Iterator[dict] | None = None
    try:
        done = {p.stem: json.loads(p.read_text()) for p in points_dir.glob("*.json")}
        todo = [p for p in points if p.key not in done]
        result.points.extend(done[p.key] for p in points if p.key in done)
        result.skipped = len(points) - len(todo)
        cache_dir = get_settings().data_dir / "cache"
        if todo:
            for cfg in {p.config.ml.horizon_days: p.config for p in todo}.values():
                ensure_samples(cfg, store, status=status)
        fp = store_fingerprint(store)
        caches: dict[str, str] = {}
        broken: dict[str, str] = {}
        tasks = []
        for p in todo:
            key = score_key(p.config, p.config.start, p.config.end, fp)
            if key not in caches and key not in broken:
                status(f"computing shared scores for [{p.period}] {p.config.start}..{p.config.end}")
                try:
                    _, key2, hit = cached_scores(p.config, store, cache_dir, status)
                except Exception as exc:  # noqa: BLE001 - fails this key's points, not the sweep
                    broken[key] = f"{type(exc).__name__}: {exc}"
                else:
                    caches[key] = str(cache_dir / f"scores-{key2}.parquet")
                    result.cache_hits += hit
                    result.cache_misses += not hit
            if key in broken:
                fail = {"key": p.key, "label": p.label, "changes": p.changes,
                        "period": p.period, "error": broken[key]}  # fmt: skip
                result.failed.append(fail)
                if on_point:
                    on_point(fail, len(result.failed), len(todo))
                continue
            tasks.append({
                "key": p.key, "label": p.label, "changes": p.changes, "period": p.period,
                "config": p.config.model_dump(mode="json"), "db_url": db_url,
                "scores_path": caches[key], "sweep_id": sid, "points_dir": str(points_dir),
            })  # fmt: skip
        status(f"running {len(tasks)} points ({result.skipped} already done)")
        stream = (
            _dask(tasks, client) if client is not None
            else _local(tasks, sweep.executor.workers)
        )  # fmt: skip
        for i, res in enumerate(stream, start=1):
            (result.failed if "error" in res else result.points).append(res)
            if on_point:
                on_point(res, i, len(tasks))
    except KeyboardInterrupt:
        if stream is not None:
            stream.close()  # stops the workers before counting what they stored
        kept = len(list(points_dir.glob("*.json")))
        raise SweepInterrupted(
            f"stopped: {kept} of {len(points)} points finished and kept in {points_dir} "
            "(rerun to finish the others)"
        ) from None
    finally:
        if stream is not None:
            stream.close()
        if owned is not None:
            client.close()
            owned.close()
    order = {p.key: i for i, p in enumerate(points)}
    result.points.sort(key=lambda r: order.get(r["key"], 0))
    result.selected = select(result, sweep)
    result.benchmark = benchmark_curves(result, store)
    result.outputs = write_sweep_outputs(result, out)
    return result


def select(result: SweepResult, sweep: SweepConfig) -> dict[str, Any] | None:
    """The best point by ``sweep.metric`` on the selection period (or the full period)."""
    period = "selection" if sweep.selection else "full"
    pool = [p for p in result.points if p["period"] == period]
    scored = [p for p in pool if p["metrics"].get(sweep.metric) is not None]
    if not scored:
        return None
    lower_is_better = sweep.metric in ("annualized_volatility", "turnover")
    best = (min if lower_is_better else max)(scored, key=lambda p: p["metrics"][sweep.metric])
    chosen = {"label": best["label"], "changes": best["changes"], "selection": best["metrics"]}
    if sweep.test:
        test = [p for p in result.points if p["period"] == "test" and p["label"] == best["label"]]
        chosen["test"] = test[0]["metrics"] if test else None
    return chosen
