"""The bodies of ``sentinel backtest``, ``sweep`` and ``live`` (the Typer wiring is in
:mod:`cli.main`).

The engine is imported inside each command: ``engine.backtest`` pulls pandas, scikit-learn and
hmmlearn (seconds), which ``sentinel --help`` and the other commands should not pay for.
"""

from __future__ import annotations

import os
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cli._common import err_console

console = Console(highlight=False)


def run_backtest_command(config: str, output: str | None, db_url: str | None) -> None:
    # lazy: engine.backtest pulls pandas, scikit-learn, hmmlearn (start-up time)
    from engine.backtest import run_backtest, summary_lines
    from engine.config import load_config
    from engine.session import open_run_store, trading_period

    cfg = load_config(config)
    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    with console.status("opening the store"):
        store = open_run_store(cfg, url)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
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

        result_days = trading_period(cfg, store)
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
    # lazy: engine.session and engine.sweep_run pull pandas, scikit-learn, hmmlearn (start-up time)
    from engine.session import open_run_store
    from engine.sweep import load_sweep
    from engine.sweep_run import SweepInterrupted, run_sweep
    from engine.sweep_types import POINT_METRICS

    sweep = load_sweep(config)
    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    with console.status("opening the store"):
        store = open_run_store(sweep.base, url)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console,
    ) as progress:  # fmt: skip
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
    for _, row in df.iterrows():
        table.add_row(*[
            "n/a" if row[c] is None or row[c] != row[c] else
            f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols
        ])  # fmt: skip
    console.print(table)
    if result.selected:
        sel = result.selected
        metric = sweep.metric

        def fmt(v):
            return "n/a" if v is None else f"{v:.3f}"

        line = f"selected: {sel['label']} (in-sample {metric} {fmt(sel['selection'].get(metric))})"
        if sweep.test:
            test = (sel.get("test") or {}).get(metric)
            line += f"; out-of-sample {metric}: {fmt(test)}"
        else:
            line += " (in-sample: add selection/test periods for an honest estimate)"
        console.print(line)
    if result.failed:
        console.print(f"[red]{len(result.failed)} point(s) failed[/red]; rerun to retry them")
    console.print(f"results: {result.outputs['html']} and {result.outputs['csv']}")


def run_live_command(config: str, once: bool, replay: bool, db_url: str | None) -> None:
    # lazy: engine.live and engine.session pull pandas, scikit-learn, hmmlearn (start-up time)
    from engine.config import load_config
    from engine.live import LiveRunner, sync_prices
    from engine.session import open_run_store

    cfg = load_config(config)
    url = db_url or os.environ.get("SENTINEL_DATABASE_URL")
    store = open_run_store(cfg, url)
    with console.status("preparing the planner"):
        runner = LiveRunner(cfg, store, replay=replay)
    account = runner.account
    while True:
        if not replay:
            console.print(sync_prices(cfg, store))
        reports = runner.run_due(once=once)
        if not reports:
            console.print(f"[{account}] nothing due: up to date")
        for r in reports:
            what = f"rebalanced, {len(r.orders_sent)} order(s) sent" if r.rebalanced else "marked"
            console.print(f"[{account}] {r.day}: {r.fills} fill(s), {what}, equity {r.equity:,.2f}")
        if once or replay:
            return
        time.sleep(cfg.live.poll_seconds)
