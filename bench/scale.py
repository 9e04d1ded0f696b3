"""Scale table (issue 13 item 4): engine and walk-forward ML cost vs symbols and years.

``python -m bench.scale [--budget SECONDS] [--memory-only]`` measures, each point in a fresh
subprocess (so peaks do not mix):

* the engine (ML off) on synthetic demo stores of 100 / 500 / 2,000 symbols x 5 / 20 years:
  wall time of ``run_backtest`` and the peak RSS of the run alone (the peak is reset after the
  store is built), with the setup (generate + install) timed beside it;
* one walk-forward retrain (``train_many``, the walk-forward procedure) on synthetic samples,
  ~52 weekly rows per year of history, at 100 / 500 / 2,000 symbols, plus one point fanned out
  over 2 local Dask workers (``ml.train_executor``);
* the peak RSS of the 500-symbol walk-forward ML backtest of ``bench.engine.memory_child``, with
  its store generated in another process (so the peak is the backtest's), and RSS per phase.

Log-log fits give the growth exponents and the cost formula a user predicts a run with. A point
whose predicted time (from the points measured before it) exceeds the budget is not run; the
table says so. Results: ``bench/results/scale.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import RESULTS, ROOT, Result, workload

SYMBOLS = (100, 500, 2000)
YEARS = (5, 20)
ROWS_PER_YEAR = 52  # weekly training samples per symbol and year of history
#: max_epochs of the grid's retrains (the run default is 60, sentinel.ml.policy): one point at
#: 60 gives the factor, so the grid fits this machine's ~15 min; time grows with the epochs run
TRAIN_EPOCHS = 10
RUN_EPOCHS = 60
BUDGET = 180.0  # seconds (~3 min): a point predicted to take longer is not run
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    """VmHWM (peak RSS since the last reset) in MB, else ru_maxrss."""
    from sentinel.ml._memory import peak_rss_mb

    return peak_rss_mb()


def _unique_symbols() -> None:
    """The demo names repeat after 676 symbols; the scale points need up to 2,000 distinct."""
    import sentinel.data.demo as demo

    demo._symbols = lambda n: [f"X{i:04d}" for i in range(n)]


# -- children (one point each, in a fresh process) ---------------------------------------------
def engine_child(n_symbols: int, years: int) -> dict[str, Any]:
    """Build a synthetic store, then time ``run_backtest`` (ML off) and its own peak RSS."""

    from engine.backtest import run_backtest
    from engine.config import RunConfig
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store

    _unique_symbols()
    start, end = f"{2023 - years}-01-01", "2022-12-31"
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        store = Store(f"sqlite:///{Path(tmp) / 'scale.db'}")
        install_demo(store, generate_demo_universe(7, n_symbols, start, end))
        setup = time.perf_counter() - t
        setup_peak = _peak_mb()  # VmHWM: ru_maxrss would carry the parent's peak (exec)
        cfg = RunConfig.model_validate({
            "name": "scale", "start": start, "end": end, "universe": {"kind": "all"},
            "rebalance": {"every": "weekly", "weekday": "friday"},
            "strategy": {"name": "top_n", "params": {"n": 20}},
            "ml": {"enabled": False, "mode": "off"},
        })  # fmt: skip
        reset = _reset_peak()
        load = _load()
        t = time.perf_counter()
        res = run_backtest(cfg, store=store, save=False)
        secs = time.perf_counter() - t
        peak = _peak_mb()
        store.engine.dispose()
    return {"seconds": secs, "peak_mb": peak, "peak_is_run_only": reset, "setup_s": setup,
            "setup_peak_mb": setup_peak, "rebalances": int(res.metrics["n_rebalances"]),
            "load": load}  # fmt: skip


def _samples(n_symbols: int, rows: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Weekly samples with a learnable signal (as tests/sentinel/ml/conftest.make_data)."""
    out = {}
    for i in range(n_symbols):
        rng = np.random.default_rng(i)
        X = rng.normal(size=(rows, 20))
        y = 0.03 * np.tanh(X[:, 0]) + 0.01 * rng.normal(size=rows)
        out[f"X{i:04d}"] = (X, y, np.datetime64("2000-01-07") + 7 * np.arange(rows))
    return out


def train_child(n_symbols: int, rows: int, workers: int = 0, epochs: int = TRAIN_EPOCHS
                ) -> dict[str, Any]:  # fmt: skip
    """One walk-forward retrain of ``n_symbols`` x ``rows`` (in process, or over Dask)."""
    from sentinel.ml.training import _chunks, _train_chunk

    data = _samples(n_symbols, rows)
    fit = {"max_epochs": epochs, "horizon_days": 14, "validate": False, "seed": 0}
    extra: dict[str, Any] = {}
    if workers:
        from engine.config import TrainExecutorConfig
        from engine.train_executor import DaskChunkMapper

        mapper = DaskChunkMapper(TrainExecutorConfig(kind="dask", workers=workers))
        t = time.perf_counter()
        mapper(_warm, list(range(workers)))  # cluster start + TensorFlow import on each worker
        extra["cluster_start_s"] = time.perf_counter() - t
        _reset_peak()
        load = _load()
        t = time.perf_counter()
        from functools import partial

        parts = mapper(partial(_train_chunk, **fit), _chunks(data, mapper.workers))
        secs = time.perf_counter() - t
        mapper.close()
        ok = sum(r.model is not None for p in parts for r in p.values())
    else:
        from sentinel.ml._tf import tf  # noqa: F401  (import cost is not the retrain's)

        _reset_peak()
        load = _load()
        t = time.perf_counter()
        res = _train_chunk(data, **fit)
        secs = time.perf_counter() - t
        ok = sum(r.model is not None for r in res.values())
    return {"seconds": secs, "peak_mb": _peak_mb(), "trained": ok, "load": load, **extra}


def _warm(_: int) -> int:
    from sentinel.ml._tf import tf  # noqa: F401

    return os.getpid()


#: The walk-forward ML backtest of ``bench.engine.memory_child``: 500 demo symbols stored
#: 2016-2020, run 2017-2020, weekly top 20, retrained yearly.
MEMORY_SYMBOLS = 500
MEMORY_STORED = ("2016-01-01", "2020-12-31")


def build_store(path: str, n_symbols: int, start: str, end: str) -> dict[str, Any]:
    """Generate and install a demo store at ``path`` (own process: its peak is not the run's)."""
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store

    t = time.perf_counter()
    store = Store(f"sqlite:///{path}")
    install_demo(store, generate_demo_universe(7, n_symbols, start, end))
    store.engine.dispose()
    return {"setup_s": time.perf_counter() - t, "setup_peak_mb": _peak_mb()}


class _PhaseRSS:
    """RSS at each status message of a run and the highest RSS seen until the next one."""

    def __init__(self) -> None:
        self.phases: list[dict[str, Any]] = []
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self.total_peak_mb = 0.0  # this process + its training process, sampled together
        #: the same in PSS (shared pages, e.g. the libraries both processes map, counted once)
        self.total_pss_peak_mb = 0.0
        self.mark("start")
        threading.Thread(target=self._watch, daemon=True).start()

    def close(self) -> None:
        """Stop sampling (the last phase keeps the peak seen so far)."""
        self._stop.set()

    def mark(self, what: str) -> None:
        mb = _rss_mb()
        self.phases.append({"phase": what, "at_s": round(time.perf_counter() - self.t0, 1),
                            "rss_mb": round(mb), "peak_mb": round(mb)})  # fmt: skip

    def _watch(self) -> None:
        from sentinel.ml import nn_worker

        n = 0
        while not self._stop.wait(0.05):
            last = self.phases[-1]
            mb = _rss_mb()
            last["peak_mb"] = max(last["peak_mb"], round(mb))
            worker = nn_worker._WORKER
            pid = worker.proc.pid if worker is not None and worker.alive else None
            child = _rss_mb(pid) if pid is not None else 0.0
            self.total_peak_mb = max(self.total_peak_mb, mb + child)
            n += 1
            if n % 5 == 0:  # PSS costs a page-table walk: every 0.25 s
                pss = _pss_mb("self") + (_pss_mb(pid) if pid is not None else 0.0)
                self.total_pss_peak_mb = max(self.total_pss_peak_mb, pss)


def _pss_mb(pid: int | str) -> float:
    """Proportional set size in MB (Linux >= 4.14), 0.0 if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


def _rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:  # a child that just exited
        return 0.0
    return float("nan")


@contextmanager
def _retrain_marks(phases: _PhaseRSS) -> Iterator[None]:
    """Mark each retrain's start and end in the phase table (the run's status messages do not:
    its peak is in a retrain, and the weeks between retrains hold memory too)."""
    import sentinel.ml.training as training

    fit = training.train_as_of  # the planner imports it at each retrain: the wrapper is seen

    def marked(*args: Any, **kwargs: Any) -> Any:
        phases.mark(f"retrain as of {kwargs.get('as_of')}")
        try:
            return fit(*args, **kwargs)
        finally:
            phases.mark("rebalances after the retrain")

    training.train_as_of = marked
    try:
        yield
    finally:
        training.train_as_of = fit


def ml_memory_child(db: str) -> dict[str, Any]:
    """The 500-symbol walk-forward ML backtest on a store built by another process: the peak RSS
    (VmHWM) of this process is the run's (plus imports), with RSS per phase of the run; the run's
    networks train in a child process (``sentinel.ml.nn_worker``), whose peak is added (the sum
    of the two peaks bounds what both held at once)."""
    from bench.engine import MEMORY_EPOCHS
    from engine.backtest import run_backtest
    from engine.config import RunConfig
    from sentinel.db import Store
    from sentinel.ml import nn_worker

    phases = _PhaseRSS()
    phases.mark("imports done (engine; TensorFlow is imported by the training process)")
    store = Store(f"sqlite:///{db}")
    cfg = RunConfig.model_validate({
        "name": "memory_500", "start": "2017-01-01", "end": MEMORY_STORED[1],
        "rebalance": {"every": "weekly", "weekday": "friday"},
        "strategy": {"name": "top_n", "params": {"n": 20}},
        "ml": {"enabled": True, "mode": "walk_forward", "retrain": "yearly",
               "min_samples": 40, "max_epochs": MEMORY_EPOCHS},
    })  # fmt: skip
    load = _load()
    t = time.perf_counter()
    with _retrain_marks(phases):
        res = run_backtest(cfg, store=store, save=False, status=phases.mark)
    secs = time.perf_counter() - t
    phases.mark("done")
    phases.close()
    main, child = _peak_mb(), nn_worker.peak_rss_mb()
    return {"peak_mb": main + child, "main_peak_mb": main, "training_process_peak_mb": child,
            "sampled_total_peak_mb": round(phases.total_peak_mb),
            "sampled_total_pss_peak_mb": round(phases.total_pss_peak_mb),
            "seconds": secs, "retrains": int(res.metrics["n_retrains"]),
            "load": load, "phases": phases.phases,
            "total_return": float(res.metrics["total_return"])}  # fmt: skip


def memory_point() -> dict[str, Any]:
    """The 500-symbol walk-forward ML backtest in a fresh process, its store generated in another
    (so the peak is the backtest's, not the synthetic data generation's)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "mem.db")
        setup = _child("build_store", db, MEMORY_SYMBOLS, *MEMORY_STORED)
        return {**setup, **_child("ml_memory_child", db)}


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, env=ENV,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode:
        raise RuntimeError(f"child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def _child(fn: str, *args: Any) -> dict[str, Any]:
    code = f"import json; from bench.scale import {fn}; print('RESULT=' + json.dumps({fn}{args}))"
    out = _run(code)
    return json.loads(next(x for x in out.splitlines() if x.startswith("RESULT="))[7:])


# -- fits --------------------------------------------------------------------------------------
def fit_power(points: list[tuple[float, float, float]]) -> tuple[float, float, float] | None:
    """``t = a * x**b * z**c`` by least squares on logs; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    A = np.array([[1.0, np.log(x), np.log(z)] for x, z, _ in points])
    t = np.log([p[2] for p in points])
    (la, b, c), *_ = np.linalg.lstsq(A, t, rcond=None)
    return float(np.exp(la)), float(b), float(c)


def _predict(fit: tuple[float, float, float] | None, x: float, z: float) -> float | None:
    return None if fit is None else fit[0] * x ** fit[1] * z ** fit[2]


def _grid(kind: str, fn: str, budget: float, log: Any) -> list[dict[str, Any]]:
    """Run the (symbols x years) points smallest first; skip those predicted over budget."""
    rows: list[dict[str, Any]] = []
    order = sorted(((n, y) for n in SYMBOLS for y in YEARS), key=lambda p: (p[0] * p[1], p[0]))
    for n, y in order:
        z = y if kind == "engine" else y * ROWS_PER_YEAR
        done = [(r["symbols"], r["z"], r["seconds"]) for r in rows if "seconds" in r]
        guess = _predict(fit_power(done), n, z)
        row: dict[str, Any] = {"kind": kind, "symbols": n, "years": y, "z": z}
        if guess is not None and guess > budget:
            row["skipped"] = f"predicted {guess:.0f} s > budget {budget:.0f} s"
        else:
            row.update(_child(fn, n, z))
        rows.append(row)
        log(row)
    return rows


def run(budget: float = BUDGET, log: Any = print) -> dict[str, Any]:
    """Every section; returns the JSON written to ``bench/results/scale.json``."""
    t0 = time.perf_counter()
    engine = _grid("engine", "engine_child", budget, log)
    train = _grid("train", "train_child", budget, log)
    n, y = 500, 5  # a 500-symbol retrain fanned out over 2 local workers
    dask = {"kind": "train_dask", "symbols": n, "years": y, "z": y * ROWS_PER_YEAR,
            **_child("train_child", n, y * ROWS_PER_YEAR, 2)}  # fmt: skip
    log(dask)
    n, y = 100, 5  # the same retrain at the run's default max_epochs: the epoch factor
    epochs = {"kind": "train_60", "symbols": n, "years": y, "z": y * ROWS_PER_YEAR,
              **_child("train_child", n, y * ROWS_PER_YEAR, 0, RUN_EPOCHS)}  # fmt: skip
    log(epochs)
    memory = {"kind": "memory_500", **memory_point()}
    log(memory)
    out = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
        "engine": engine, "train": train, "train_dask": dask, "train_60": epochs,
        "memory_500": memory,
        "train_epochs": TRAIN_EPOCHS, "total_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return save(out)


def save(out: dict[str, Any]) -> dict[str, Any]:
    """Fit the growth laws on the measured points and write ``bench/results/scale.json``."""

    def pts(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float, float]]:
        return [(r["symbols"], r["z"], r[key]) for r in rows if "seconds" in r]

    out["fits"] = {
        "engine_seconds": fit_power(pts(out["engine"], "seconds")),
        "engine_peak_mb": fit_power(pts(out["engine"], "peak_mb")),
        "retrain_seconds": fit_power(pts(out["train"], "seconds")),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(out, indent=2))
    return out


def formula(out: dict[str, Any]) -> str:
    """The cost model a user predicts a run with, with the fitted constants."""
    e, t = out["fits"]["engine_seconds"], out["fits"]["retrain_seconds"]
    if e is None or t is None:
        return "too few points to fit the cost model"
    base = next(r for r in out["train"] if r["symbols"] == 100 and r["years"] == 5)
    k = out["train_60"]["seconds"] / base["seconds"]  # 60-epoch / grid-epoch retrain time
    return (
        f"run seconds ~= engine + retrains x retrain, with engine ~= {e[0]:.3g} x symbols^"
        f"{e[1]:.2f} x years^{e[2]:.2f} (ML off) and one retrain ~= {t[0]:.3g} x symbols^"
        f"{t[1]:.2f} x rows_per_symbol^{t[2]:.2f} x {k:.2f} (rows ~= 52 x years of history; "
        f"fitted at max_epochs {out['train_epochs']}, x {k:.2f} for the default "
        f"{RUN_EPOCHS}, measured at 100 symbols x 5 y); retrains = years x 1 / 4 / 12 / 52 "
        "(yearly / quarterly / monthly / weekly)"
    )


def table(out: dict[str, Any]) -> str:
    """The scale table as Markdown."""
    lines = ["| workload | symbols | years | wall s | peak RSS MB (of the timed part, process "
             "incl. the store) | load avg 1m | notes |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    ep = out["train_epochs"]
    for r in [*out["engine"], *out["train"], out["train_dask"], out["train_60"]]:
        what = {"engine": "engine, ML off", "train": f"one retrain, max_epochs {ep}",
                "train_dask": f"one retrain, max_epochs {ep}, 2 local Dask workers",
                "train_60": f"one retrain, max_epochs {RUN_EPOCHS}"}[r["kind"]]  # fmt: skip
        if "skipped" in r:
            lines.append(f"| {what} | {r['symbols']} | {r['years']} | - | - | - | "
                         f"not run: {r['skipped']} |")  # fmt: skip
            continue
        notes = []
        if r["kind"] == "engine":
            notes.append(f"setup {r['setup_s']:.0f} s, {r['rebalances']} rebalances")
        else:
            notes.append(f"{r['z']} rows/symbol, {r['trained']} trained")
        if "cluster_start_s" in r:
            notes.append(f"cluster start + TF import {r['cluster_start_s']:.0f} s (not counted); "
                         "peak RSS of the client only")  # fmt: skip
        lines.append(f"| {what} | {r['symbols']} | {r['years']} | {r['seconds']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['load']} | {'; '.join(notes)} |")  # fmt: skip
    m = out["memory_500"]
    lines.append(f"| walk-forward ML backtest (the run of bench.engine memory_child) | 500 | "
                 f"4 (5 stored) | "
                 f"{m['seconds']:.0f} | {m['peak_mb']:.0f} | {m['load']} | target 1500 MB; "
                 f"{m['retrains']} yearly retrains; peak of the backtest alone (store generated "
                 f"in another process, its peak {m['setup_peak_mb']:.0f} MB): the run's own "
                 f"{m.get('main_peak_mb', m['peak_mb']):.0f} MB + its training process's "
                 f"{m.get('training_process_peak_mb', 0.0):.0f} MB (the sum bounds the total; "
                 f"both sampled every 50 ms at once peaked at "
                 f"{m.get('sampled_total_peak_mb', float('nan')):.0f} MB; in PSS, which counts "
                 f"the pages both share once, "
                 f"{m.get('sampled_total_pss_peak_mb', float('nan')):.0f} MB) |")  # fmt: skip
    for name, f in out["fits"].items():
        if f is not None:
            lines.append(
                f"\n{name}: growth exponent symbols {f[1]:.2f}, "
                f"{'rows' if name == 'retrain_seconds' else 'years'} {f[2]:.2f}"
            )
    return "\n".join(lines)


@workload("scale")
def scale() -> list[Result]:
    """Scale table: engine and walk-forward retrain vs symbols x years (~15 min)."""
    out = run(log=lambda row: None)
    m = out["memory_500"]
    res = [Result("scale", "peak RSS, 500-symbol walk-forward ML backtest", m["peak_mb"] / 1e3,
                  "GB", 1.5, notes=formula(out))]  # fmt: skip
    for r in out["engine"] + out["train"]:
        if "seconds" in r:
            res.append(Result("scale", f"{r['kind']} {r['symbols']} symbols x {r['years']} y",
                              r["seconds"], "s", notes=f"peak {r['peak_mb']:.0f} MB, "
                              f"load {r['load']}"))  # fmt: skip
    return res


def phase_table(m: dict[str, Any]) -> str:
    """RSS of the 500-symbol walk-forward run at each of its status messages (MB)."""
    lines = ["| from (status message) | at s | RSS at start MB | peak until next MB |",
             "|---|---|---|---|"]  # fmt: skip
    for p in m["phases"]:
        lines.append(f"| {p['phase']} | {p['at_s']} | {p['rss_mb']} | {p['peak_mb']} |")
    return "\n".join(lines)


def memory_only() -> dict[str, Any]:
    """Re-measure only the 500-symbol ML memory point; replaces it in an existing scale.json."""
    path = RESULTS / "scale.json"
    memory = {"kind": "memory_500", **memory_point()}
    if path.exists():
        out = json.loads(path.read_text())
        out["memory_500"] = memory
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
    return memory


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__.split("\n\n")[1].split(" measures")[0].strip("` "))
        print(
            f"--budget S: skip a point predicted above S seconds (default {BUDGET:.0f}); "
            "--memory-only: only the 500-symbol memory point."
        )
        return 0
    if "--memory-only" in argv:
        m = memory_only()
        print(json.dumps({k: v for k, v in m.items() if k != "phases"}))
        print(phase_table(m))
        return 0
    budget = float(argv[argv.index("--budget") + 1]) if "--budget" in argv else BUDGET
    out = run(budget, log=lambda row: print(json.dumps(row), flush=True))
    print(table(out))
    print(phase_table(out["memory_500"]))
    print(formula(out))
    print(f"total {out['total_seconds']:.0f} s; written {RESULTS / 'scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
