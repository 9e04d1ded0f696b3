"""The bodies of ``sentinel backtest``, ``sweep`` and ``live`` (the Typer wiring is in
:mod:`cli.main`).

The engine is imported inside each command: ``engine.backtest`` pulls pandas, scikit-learn and
hmmlearn (seconds), which ``sentinel --help`` and the other commands should not pay for.
"""

from __future__ import annotations

import contextlib
import os
import time

from rich.table import Table

from cli._common import CountingProgress, console, err_console, working


def _spawn_training(cfg) -> None:  # noqa: ANN001 - engine.config is imported lazily
    """A walk-forward run's network-training process starts importing TensorFlow now, beside
    this process's own imports and store reads (seconds that were on the run's critical path);
    the session adopts it (``engine.session``). Settings that turn ML off later leave it idle."""
    if cfg.ml.walk_forward and cfg.ml.train_executor.kind == "local":
        from sentinel.ml import nn_worker

        with contextlib.suppress(OSError):  # the session retries, then trains in process
            nn_worker.spawn(threads=1)


def run_backtest_command(config: str, output: str | None, db_url: str | None) -> None:
    from engine.config import load_config  # lazy: pydantic and YAML only (well under a second)

    cfg = load_config(config)  # a config error shows before the engine is imported
    _spawn_training(cfg)
    # lazy: engine.backtest pulls pandas, scikit-learn, hmmlearn (seconds)
    from engine.backtest import run_backtest, summary_lines
    from engine.calendar import split_days
    from engine.session import check_benchmark, open_run_store, trading_period

    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    with working("opening the store"):
        store = open_run_store(cfg, url)
    check_benchmark(cfg, store)
    with CountingProgress() as progress:
        prep = progress.add_task("preparing", total=None)
        days_task = None

        def status(msg: str) -> None:
            progress.update(prep, description=msg)

        def on_tick(tick, n: int) -> None:
            nonlocal days_task
            if days_task is None:
                days_task = progress.add_task("simulating days", total=len(result_days))
                progress.update(prep, description="prepared", total=1, completed=1)
            progress.update(days_task, completed=n, description=f"simulating {tick.day}")

        # the days the run simulates: the store's days in the period that are exchange sessions
        result_days = split_days(cfg.calendar, trading_period(cfg, store))[0]
        result = run_backtest(cfg, store=store, output=output, on_tick=on_tick, status=status)
    table = Table(title=f"{cfg.name}: {result_days[0]} .. {result_days[-1]}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary_lines(result):
        table.add_row(k, v)
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if result.outputs:
        console.print(f"report: {result.outputs.get('report')}")
    console.print(f"stored as backtest run #{result.db_id}")


def run_sweep_command(config: str, output: str | None, db_url: str | None) -> None:
    from engine.sweep_config import load_sweep  # lazy: pydantic and YAML only

    sweep = load_sweep(config)  # every point validated before the engine is imported
    # lazy: engine.session and engine.sweep_run pull pandas, scikit-learn, hmmlearn (start-up time)
    from engine.session import check_benchmark, open_run_store
    from engine.sweep_run import SweepInterrupted, run_sweep
    from engine.sweep_stats import verdict
    from engine.sweep_types import POINT_METRICS, format_metric

    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    with working("opening the store"):
        store = open_run_store(sweep.base, url)
    check_benchmark(sweep.base, store)
    with CountingProgress() as progress:
        prep = progress.add_task("preparing", total=None)
        points_task = None

        def status(msg: str) -> None:
            progress.update(prep, description=msg)

        def on_point(res: dict, i: int, n: int) -> None:
            nonlocal points_task
            if points_task is None:
                points_task = progress.add_task("points", total=n)
            progress.update(points_task, completed=i, description=f"done: {res['label']}")
            if "error" in res:
                progress.console.print(f"[red]point failed[/red] {res['label']}: {res['error']}")

        try:
            result = run_sweep(sweep, store=store, output=output, status=status, on_point=on_point)
        except SweepInterrupted as exc:
            progress.stop()
            err_console.print(str(exc), soft_wrap=True)
            raise KeyboardInterrupt from None
    table = Table(title=f"sweep {sweep.name}")
    df = result.table()
    keys = [k for k in sweep.grid if k in df.columns] or ["point"]
    cols = [*keys, "period", *POINT_METRICS[:4]]
    for c in cols:
        table.add_column(c, justify="left" if c in ("point", "period") else "right")
    table.add_column("Sharpe 95% CI", justify="right")
    for _, row in df.iterrows():
        low, high = row["sharpe_ci_low"], row["sharpe_ci_high"]
        interval = "n/a" if low is None or low != low else f"{low:.2f}..{high:.2f}"
        table.add_row(*[
            format_metric(c, row[c]) if c in POINT_METRICS else str(row[c]) for c in cols
        ], interval)  # fmt: skip
    console.print(table)
    if result.selected:
        sel = result.selected
        metric = sweep.metric

        def fmt(v):
            return format_metric(metric, v)

        line = f"selected: {sel['label']} (in-sample {metric} {fmt(sel['selection'].get(metric))})"
        if sweep.test:
            test = (sel.get("test") or {}).get(metric)
            line += f"; out-of-sample {metric}: {fmt(test)}"
        else:
            line += " (in-sample: add selection/test periods for an honest estimate)"
        console.print(line)
    for line in verdict(result.statistics):
        console.print(line, markup=False, soft_wrap=True)
    if result.failed:
        console.print(f"[red]{len(result.failed)} point(s) failed[/red]; rerun to retry them")
    console.print(f"results: {result.outputs['html']} and {result.outputs['csv']}")


def _replay(runner, cfg, store) -> None:
    """``live --replay``: one progress line (a spinner, or ~10 lines in a log), a summary, and
    the parity check against a backtest of the same config."""
    from engine.live import replay_parity

    account = runner.account
    gap = runner.clock.gap_warning()
    if gap:
        console.print(f"[{account}] warning: {gap}", markup=False)
    totals = {"rebalances": 0, "orders": 0, "fills": 0}
    with working(f"[{account}] replaying the config's days") as say:

        def progress(r, i: int, n: int) -> None:
            totals["rebalances"] += r.rebalanced
            totals["orders"] += len(r.orders_sent)
            totals["fills"] += r.fills
            if console.is_terminal or i == n or i % max(1, n // 10) == 0:
                say(f"[{account}] replaying day {i:,}/{n:,} ({r.day}), equity {r.equity:,.2f}")

        reports = runner.run_due(on_step=progress)
    if not reports:
        console.print(f"[{account}] nothing due: up to date")
        return
    console.print(
        f"[{account}] replayed {len(reports):,} day(s), {reports[0].day} to {reports[-1].day}: "
        f"{totals['rebalances']:,} rebalance(s), {totals['orders']:,} order(s) sent, "
        f"{totals['fills']:,} fill(s); equity {reports[-1].equity:,.2f}",
        markup=False,
        soft_wrap=True,  # one line whatever the terminal's width: logs and scripts grep it
    )
    with working("checking parity with a backtest of the same config"):
        line = replay_parity(cfg, store, account)
    console.print(f"[{account}] {line}", markup=False, soft_wrap=True)


def run_live_command(config: str, once: bool, replay: bool, db_url: str | None) -> None:
    from engine.config import load_config  # lazy: pydantic and YAML only

    cfg = load_config(config)  # a config error shows before the engine is imported
    # lazy: engine.live and engine.session pull pandas, scikit-learn, hmmlearn (start-up time)
    from engine.live import LiveRunner, sync_prices
    from engine.session import open_run_store

    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    store = open_run_store(cfg, url)
    with working("preparing the planner"):
        runner = LiveRunner(cfg, store, replay=replay)
    account = runner.account
    if replay and not once:
        _replay(runner, cfg, store)
        return
    while True:
        if not replay:
            console.print(sync_prices(cfg, store))
        gap = runner.clock.gap_warning()
        if gap:
            console.print(f"[{account}] warning: {gap}", markup=False)
        reports = runner.run_due(once=once)
        if not reports:
            console.print(f"[{account}] nothing due: up to date")
        for r in reports:
            what = f"rebalanced, {len(r.orders_sent)} order(s) sent" if r.rebalanced else "marked"
            console.print(f"[{account}] {r.day}: {r.fills} fill(s), {what}, equity {r.equity:,.2f}")
        if once or replay:
            return
        time.sleep(cfg.live.poll_seconds)
