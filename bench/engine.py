"""Backtest engine workloads (issue 5, "Must reach").

* ``engine_ref``: the reference momentum workload in sentinel, backtrader and vectorbt with the same
  rules, each timed in-process (imports and data loading excluded), in one benchmark run.
* ``walk_forward_100``: walk-forward ML over 100 real symbols and 5 years, retrained monthly
  (``walk_forward_100_warm``: the same with ``ml.warm_start: 0.25``).
* ``main_job``: ``sentinel backtest configs/demo.yaml`` on a new store, then three times warm.
* ``memory_500``: peak RSS of a 500-symbol walk-forward ML backtest, in a fresh subprocess
  (target 1.5 GB).

Run with ``python -c "import bench.engine; from bench.__main__ import main; main(['engine_ref'])"``
(or ``python -m bench engine_ref`` once ``bench/__main__.py`` imports this module).
"""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._harness import ROOT, Result, shared, timed, workload

PRICES = "sp500_5y_prices.csv.gz"
N_TOP, LOOKBACK, COMMISSION, CASH = 20, 60, 0.001, 1_000_000.0
#: The file's last session (2017-12-06) is partial: 21 of its opens lie outside [low, high] and
#: the importer rejects those rows, so every engine stops the day before on identical bars.
REF_END = "2017-12-05"


# -- data -----------------------------------------------------------------------------------
def complete_symbols(raw: pd.DataFrame) -> list[str]:
    """Symbols with a valid bar on every trading day of the file (350 of the 366)."""
    ok = raw.dropna(subset=["open", "high", "low", "close", "volume"])
    ok = ok.drop_duplicates(["symbol", "date"])
    n_days = raw["date"].nunique()
    counts = ok.groupby("symbol")["date"].nunique()
    return sorted(counts[counts == n_days].index)


def panels(raw: pd.DataFrame, symbols: list[str], end: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Wide open and close panels (date x symbol, symbols by name) up to ``end``."""
    df = raw[raw["symbol"].isin(symbols) & (raw["date"] <= end)]
    df = df.drop_duplicates(["symbol", "date"])
    df = df.assign(date=pd.to_datetime(df["date"]))
    wide = df.pivot(index="date", columns="symbol", values=["open", "close"]).sort_index()
    return wide["open"][symbols], wide["close"][symbols]


def week_starts(index: pd.DatetimeIndex) -> np.ndarray:
    """Row numbers of the first trading day of each ISO week (sentinel's ``week_start``)."""
    iso = index.isocalendar()
    key = iso["year"].to_numpy() * 100 + iso["week"].to_numpy()
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


# -- sentinel --------------------------------------------------------------------------------
def ref_config(symbols: list[str], start: str, end: str) -> Any:
    from engine.config import RunConfig

    return RunConfig.model_validate({
        "name": "engine_ref", "start": start, "end": end,
        "universe": {"kind": "list", "symbols": symbols},
        "rebalance": {"every": "week_start", "min_trade_weight": 0},
        "strategy": {"name": "momentum", "params": {"n": N_TOP, "lookback": LOOKBACK, "skip": 0}},
        "costs": {"commission_bps": COMMISSION * 1e4, "min_commission": 0, "slippage_bps": 0,
                  "fill": "next_open", "fractional": True},
        "ml": {"enabled": False, "mode": "off"},
        "initial_cash": CASH,
    })  # fmt: skip


# -- vectorbt --------------------------------------------------------------------------------
def vbt_targets(close: pd.DataFrame) -> np.ndarray:
    """Target percents on the day after each rebalance day (NaN elsewhere: no order).

    Momentum on T's close, ties to the first symbol by name (columns are sorted by name), as
    sentinel's ``Momentum``; 1/N for the N best, 0 for the rest (held ones are sold).
    """
    c = close.to_numpy()
    target = np.full(c.shape, np.nan)
    for i in week_starts(close.index):
        if i < LOOKBACK or i + 1 >= len(c):
            continue
        mom = c[i] / c[i - LOOKBACK] - 1.0
        best = np.argsort(-mom, kind="stable")[:N_TOP]
        target[i + 1] = 0.0
        target[i + 1, best] = 1.0 / N_TOP
    return target


def vbt_run(open_: pd.DataFrame, close: pd.DataFrame, target: np.ndarray | None = None) -> Any:
    """``from_orders`` with target percents filled at the next open.

    ``val_price=-inf`` values the book at the previous (decision-day) close, so the target shares
    are weight x equity(T) / close(T), exactly sentinel's sizing.
    """
    import vectorbt as vbt

    return vbt.Portfolio.from_orders(
        close=close, size=vbt_targets(close) if target is None else target,
        size_type="targetpercent", price=open_, val_price=-np.inf, fees=COMMISSION,
        init_cash=CASH, cash_sharing=True, group_by=True, call_seq="auto", freq="1D",
    )  # fmt: skip


# -- backtrader ------------------------------------------------------------------------------
def bt_run(open_: pd.DataFrame, close: pd.DataFrame) -> dict[str, float]:
    """The same rules in backtrader; returns final value, fills and rejected orders."""
    import backtrader as bt

    class ScalingBroker(bt.brokers.BackBroker):
        """Sentinel's no-overdraft rule at the fill: sells first, then buys scaled down together
        when the cash after the sells does not cover them (backtrader alone rejects the last)."""

        def next(self) -> None:
            pending = [o for o in self.pending if o.alive()]
            sells = [o for o in pending if not o.isbuy()]
            buys = [o for o in pending if o.isbuy()]
            if buys:
                cash = self.cash
                for o in sells:
                    value = -o.executed.remsize * o.data.open[0]
                    cash += value * (1 - COMMISSION)
                need = sum(o.executed.remsize * o.data.open[0] * (1 + COMMISSION) for o in buys)
                if need > cash > 0:
                    scale = cash / need * (1 - 1e-12)
                    for o in buys:
                        o.created.size *= scale
                        o.executed.remsize *= scale
            super().next()

    class Momentum(bt.Strategy):
        def __init__(self) -> None:
            self.week: tuple[int, int] | None = None
            self.fills = 0
            self.rejected = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.fills += 1
            elif order.status in (order.Margin, order.Rejected, order.Canceled):
                self.rejected += 1

        def next(self) -> None:
            week = tuple(self.datas[0].datetime.date(0).isocalendar())[:2]
            if week == self.week:
                return
            self.week = week  # type: ignore[assignment]
            if len(self.datas[0]) < LOOKBACK + 1:
                return
            mom = np.array([d.close[0] / d.close[-LOOKBACK] - 1.0 for d in self.datas])
            best = set(np.argsort(-mom, kind="stable")[:N_TOP].tolist())
            equity = self.broker.getvalue()
            sells, buys = [], []
            for i, d in enumerate(self.datas):  # datas are in name order
                held = self.getposition(d).size
                shares = equity / N_TOP / d.close[0] if i in best else 0.0
                delta = shares - held
                if abs(delta) >= 1e-9:
                    (buys if delta > 0 else sells).append((d, delta))
            for d, delta in sells:
                self.sell(data=d, size=-delta)
            for d, delta in buys:
                self.buy(data=d, size=delta)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker = ScalingBroker()
    cerebro.broker.setcash(CASH)
    cerebro.broker.set_checksubmit(False)  # check cash at the fill (after the sells), not at T
    cerebro.broker.addcommissioninfo(
        bt.CommInfoBase(commission=COMMISSION, commtype=bt.CommInfoBase.COMM_PERC,
                        stocklike=True, percabs=True)
    )  # fmt: skip
    for sym in close.columns:
        frame = pd.DataFrame({"open": open_[sym], "high": np.maximum(open_[sym], close[sym]),
                              "low": np.minimum(open_[sym], close[sym]), "close": close[sym],
                              "volume": 0.0})  # fmt: skip
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=sym)
    cerebro.addstrategy(Momentum)
    strat = cerebro.run()[0]
    return {"value": cerebro.broker.getvalue(), "fills": strat.fills, "rejected": strat.rejected}


def _median(fn: Callable[[], object], repeat: int, cpu: list[float] | None = None) -> float:
    """Median wall time of ``repeat`` calls; each call's CPU time (this process) into ``cpu``.

    CPU time is the steadier figure on a shared machine: other processes' load stretches the
    wall time of both engines, not the CPU time each one spends.
    """
    walls = []
    for _ in range(repeat):
        c = time.process_time()
        walls.append(timed(fn))
        if cpu is not None:
            cpu.append(time.process_time() - c)
    return statistics.median(walls)


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@workload("engine_ref")
def engine_ref() -> list[Result]:
    """350 real symbols x 5y, weekly top-20 momentum: sentinel vs backtrader (>= 100x faster) and
    vectorbt's from_orders (<= 1x), wall and CPU time, with the load average."""
    from engine.backtest import run_backtest
    from sentinel.data.importer import import_files
    from sentinel.db import Store

    path = shared(PRICES)
    raw = pd.read_csv(path)
    symbols = complete_symbols(raw)
    open_, close = panels(raw, symbols, REF_END)
    start, end = close.index[0].date().isoformat(), REF_END
    cfg = ref_config(symbols, start, end)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'ref.db'}")
        import_files(store, [path], skip_bad=True)
        store.market.preload()
        seen = store.market.get_close_panel(symbols, end_date=date.fromisoformat(end))
        assert seen.index.equals(close.index) and np.array_equal(seen.to_numpy(), close.to_numpy())
        out: dict[str, Any] = {}
        run_backtest(cfg, store=store, save=False)  # warm-up (imports vectorbt for metrics)
        load_start = _loadavg()
        s_cpu: list[float] = []
        s_time = _median(lambda: out.update(s=run_backtest(cfg, store=store, save=False)), 3,
                         s_cpu)  # fmt: skip
        store.engine.dispose()
    vbt_run(open_, close)  # warm-up: numba compiles
    v_time = _median(lambda: out.update(v=vbt_run(open_, close)), 3)
    target = vbt_targets(close)
    o_cpu: list[float] = []
    v_orders = _median(lambda: vbt_run(open_, close, target), 3, o_cpu)
    bt_run(open_.iloc[:200], close.iloc[:200])  # warm-up (a short run: the full one is slow)
    b_cpu = time.process_time()
    b_time = timed(lambda: out.update(b=bt_run(open_, close)))
    b_cpu = time.process_time() - b_cpu
    load = f"load average (1, 5, 15 min) {load_start} at the start, {_loadavg()} at the end"

    res, pf, btr = out["s"], out["v"], out["b"]
    s_final = float(res.equity["equity"].iloc[-1])
    v_final, b_final = float(pf.final_value()), float(btr["value"])
    rel_v, rel_b = v_final / s_final - 1.0, b_final / s_final - 1.0
    n_days, n_reb = len(close), int(res.metrics["n_rebalances"])
    what = (f"{len(symbols)} symbols with a bar on every day, {n_days} days {start}..{end}, "
            f"{n_reb} rebalances; sentinel: run_backtest on a preloaded store, metrics "
            "included")  # fmt: skip
    rules = (
        "Same rules in all three: momentum close(T)/close(T-60)-1 on the first trading day of "
        "each ISO week, top 20 (ties by name), target shares = equity(T)/20/close(T), fill at "
        "T+1 open, 10 bps commission, fractional, sells before buys. Differences: when cash "
        "after the sells is short, sentinel and the backtrader broker subclass scale all buys "
        "down together, vectorbt fills the last buy partially (call_seq auto); backtrader's time "
        "includes its feed preload and runs with stdstats=False."
    )
    return [
        Result("engine_ref", "sentinel run_backtest (median of 3 after a warm-up)", s_time, "s",
               None, v_time, f"{what}. Reference: vectorbt (signals + from_orders). {load}."),
        Result("engine_ref", "sentinel time / backtrader time", s_time / b_time, "x", 1 / 100,
               notes=f"target: sentinel >= 100x faster. backtrader {b_time:.2f} s (1 run after a "
                     f"200-day warm-up): sentinel is {b_time / s_time:.0f}x faster. {rules}"),
        Result("engine_ref", "sentinel CPU time / backtrader CPU time", min(s_cpu) / b_cpu, "x",
               1 / 100, notes=f"sentinel min of 3 {min(s_cpu):.3f} s, backtrader {b_cpu:.2f} s"),
        Result("engine_ref", "sentinel time / vectorbt time (signals + from_orders)",
               s_time / v_time, "x", None,
               notes=f"vectorbt {v_time * 1e3:.0f} ms (median of 3 after a warm-up), of which "
                     f"from_orders alone {v_orders * 1e3:.0f} ms"),
        Result("engine_ref", "sentinel time / vectorbt from_orders alone", s_time / v_orders, "x",
               1.0, notes="from_orders with the target array precomputed (no ranking)"),
        Result("engine_ref", "sentinel CPU time / vectorbt from_orders CPU time (min of 3)",
               min(s_cpu) / min(o_cpu), "x", 1.0,
               notes=f"sentinel {min(s_cpu) * 1e3:.0f} ms, from_orders {min(o_cpu) * 1e3:.0f} ms "
                     "(process CPU time: steadier than wall time on a shared machine); sentinel "
                     f"runs {', '.join(f'{x * 1e3:.0f}' for x in s_cpu)} ms, from_orders "
                     f"{', '.join(f'{x * 1e3:.0f}' for x in o_cpu)} ms; {load}"),
        Result("engine_ref", "final equity, sentinel", s_final, "$", None, v_final,
               f"vectorbt {v_final:,.2f} ({rel_v:+.2e} relative), backtrader {b_final:,.2f} "
               f"({rel_b:+.2e}); fills: sentinel {len(res.trades)}, vectorbt "
               f"{pf.orders.count()}, backtrader {btr['fills']} ({btr['rejected']} rejected)",
               extra={"vectorbt": v_final, "backtrader": b_final, "rel_vectorbt": rel_v,
                      "rel_backtrader": rel_b}),
    ]  # fmt: skip


# -- walk-forward ML, 100 symbols x 5 years ----------------------------------------------------
def _subset_file(src: Path, symbols: list[str], dest: Path) -> Path:
    df = pd.read_csv(src)
    with gzip.open(dest, "wt") as fh:
        df[df["symbol"].isin(symbols)].to_csv(fh, index=False)
    return dest


@workload("walk_forward_100")
def walk_forward_100() -> list[Result]:
    """Walk-forward ML backtest, 100 real symbols x 5 years, monthly retraining; target < 1 min.

    Counts (epochs, trees) are picked yearly (``ml.select_every: 12``): the retrains between
    refit once on every known sample (see README, walk-forward training)."""
    return _walk_forward_100(0.0)


@workload("walk_forward_100_warm")
def walk_forward_100_warm() -> list[Result]:
    """The same run with ``ml.warm_start: 0.25``: refits between picks resume the previous
    networks for a quarter of the picked epochs (README, walk-forward training)."""
    return _walk_forward_100(0.25)


def _walk_forward_100(warm_start: float) -> list[Result]:
    from engine.backtest import run_backtest
    from engine.config import RunConfig
    from sentinel.data.importer import import_files
    from sentinel.db import Store

    path, bench = shared(PRICES), shared("benchmarks.csv.gz")
    symbols = complete_symbols(pd.read_csv(path))[:100]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'wf.db'}")
        # only the 100 symbols: features and samples are computed for what the store holds
        import_files(store, [_subset_file(path, symbols, Path(tmp) / "p.csv.gz")], skip_bad=True)
        import_files(store, [bench], kind="benchmark", skip_bad=True)
        span = store.market.price_span()
        assert span is not None
        cfg = RunConfig.model_validate({
            "name": "walk_forward_100", "start": span[0], "end": span[1],
            "universe": {"kind": "list", "symbols": symbols},
            "rebalance": {"every": "weekly", "weekday": "friday"},
            "strategy": {"name": "top_n", "params": {"n": 20}},
            "ml": {"enabled": True, "mode": "walk_forward", "retrain": "monthly",
                   "min_samples": 52, "select_every": 12, "warm_start": warm_start},
            "costs": {"commission_bps": 1, "min_commission": 1, "slippage_bps": 5},
            "benchmark": "SPY",
        })  # fmt: skip
        out: dict[str, Any] = {}
        secs = timed(lambda: out.update(r=run_backtest(cfg, store=store, save=False)))
    res = out["r"]
    name = "walk_forward_100" + ("_warm" if warm_start else "")
    return [
        Result(name, "wall time, 100 symbols x 5 years, monthly retrain", secs / 60,
               "min", 1.0,
               notes=f"{span[0]}..{span[1]}, {int(res.metrics['n_retrains'])} retrains, "
                     f"{int(res.metrics['n_rebalances'])} weekly rebalances, top 20; includes "
                     "features + training-sample generation (store imported beforehand); "
                     f"max_epochs {cfg.ml.max_epochs}, min_samples 52, select_every 12"
                     + (f", warm_start {warm_start}" if warm_start else "")),
    ]  # fmt: skip


# -- peak memory, 500 symbols ------------------------------------------------------------------
MEMORY_EPOCHS = 5


def memory_child() -> None:
    """In a fresh process: a 500-symbol demo walk-forward backtest; prints its peak RSS (MB).

    The peak is VmHWM, the process's own: Linux carries the parent's peak into a child's
    ``ru_maxrss`` through exec (a bare ``python -c`` started from a process that had held
    800 MB reads ``ru_maxrss`` 790 MB, VmHWM 14 MB), so after the walk-forward workload ran in
    the bench's process, ``ru_maxrss`` read the bench's peak, not the run's (1.47 against
    1.35 GB for the same code)."""
    from engine.backtest import run_backtest
    from engine.config import RunConfig
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.db import Store
    from sentinel.ml._memory import peak_rss_mb

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'mem.db'}")
        install_demo(store, generate_demo_universe(7, 500, "2016-01-01", "2020-12-31"))
        cfg = RunConfig.model_validate({
            "name": "memory_500", "start": "2017-01-01", "end": "2020-12-31",
            "rebalance": {"every": "weekly", "weekday": "friday"},
            "strategy": {"name": "top_n", "params": {"n": 20}},
            "ml": {"enabled": True, "mode": "walk_forward", "retrain": "yearly",
                   "min_samples": 40, "max_epochs": MEMORY_EPOCHS},
        })  # fmt: skip
        t = time.perf_counter()
        res = run_backtest(cfg, store=store, save=False)
        secs = time.perf_counter() - t
    from sentinel.ml import nn_worker

    # the networks train in a child process: its peak is added (the sum bounds both at once)
    run, training = peak_rss_mb(), nn_worker.peak_rss_mb()
    print(f"PEAK_MB={run + training:.1f} RUN_MB={run:.1f} TRAINING_MB={training:.1f} "
          f"SECONDS={secs:.1f} RETRAINS={int(res.metrics['n_retrains'])}")  # fmt: skip


@workload("main_job")
def main_job() -> list[Result]:
    """``sentinel backtest configs/demo.yaml`` as a user runs it: once on a new store (demo
    generation included; target < 45 s), then three times on that warm store (median; < 20 s).

    Each run is a fresh process (imports, TensorFlow's start in the training process and the
    report included) on a temporary store and output folder; the load average is printed with
    each run, because on the 2-core target a run's time moves with the load by a few seconds.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", "from cli.main import main; main()",
               f"--db=sqlite:///{Path(tmp) / 'demo.db'}", "--create", "backtest",
               "configs/demo.yaml", "--output", str(Path(tmp) / "out")]  # fmt: skip
        for _ in range(4):
            load = os.getloadavg()[0]
            secs = timed(lambda: subprocess.run(cmd, cwd=ROOT.parent, env=env, check=True,
                                                capture_output=True))  # fmt: skip
            runs.append((secs, load))
            print(f"main_job: {secs:.1f} s (load {load:.2f})", flush=True)
    warm = [s for s, _ in runs[1:]]
    loads = ", ".join(f"{s:.1f} s (load {x:.2f})" for s, x in runs)
    return [
        Result("main_job", "sentinel backtest configs/demo.yaml, new store", runs[0][0], "s", 45.0,
               notes="demo generation, import, features, 5 yearly retrains and the report"),
        Result("main_job", "the same on the warm store (median of 3)", statistics.median(warm),
               "s", 20.0, notes=f"every run: {loads}"),
    ]  # fmt: skip


@workload("memory_500")
def memory_500() -> list[Result]:
    """Peak RSS of a 500-symbol walk-forward ML backtest (demo data), fresh process; < 1.5 GB
    (issue 13's target, in 10^9 bytes)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    code = "from bench.engine import memory_child; memory_child()"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PEAK_MB="))
    fields = dict(kv.split("=") for kv in line.split())
    gb = float(fields["PEAK_MB"]) / 1e3
    return [
        Result("memory_500", "peak RSS (VmHWM: run + training process), 500-symbol walk-forward",
               gb, "GB", 1.5,
               notes=f"synthetic demo universe (only 366 real symbols exist): 500 symbols "
                     "2016-2020, run 2017-2020, weekly top 20, retrained yearly "
                     f"({fields['RETRAINS']} retrains, max_epochs {MEMORY_EPOCHS}), fresh "
                     f"process incl. generation + import; run {float(fields['RUN_MB']):.0f} MB + "
                     f"training process {float(fields['TRAINING_MB']):.0f} MB; run took "
                     f"{fields['SECONDS']} s"),
    ]  # fmt: skip
