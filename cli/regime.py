"""``sentinel regime …``: the HMM regime table (``regime_states``).

``backfill`` is also what ``scripts/backfill_regime_states.py`` runs (see :func:`script_main`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli._common import CountingProgress, console, err_console, state
from sentinel.errors import ConfigError, SentinelError

app = typer.Typer(help="HMM regime states: backfill the history.", no_args_is_help=True)


@app.callback()
def _regime() -> None:
    """HMM regime states: backfill the history."""


def _symbols(value: str | None) -> list[str] | None:
    if value is None:
        return None
    out = [s.strip() for s in value.split(",") if s.strip()]
    return out or None


@app.command()
def backfill(
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: every known security).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date to fill (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date to fill (YYYY-MM-DD).")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: SENTINEL_DATABASE_URL or sentinel.db)."),
    ] = None,
    commit_every: Annotated[
        int, typer.Option(help="Rows per committed batch (each batch is one transaction).")
    ] = 5_000,
    workers: Annotated[
        int, typer.Option(help="Worker processes for the HMM fits (1 = in this process).")
    ] = 2,
    verify: Annotated[
        int,
        typer.Option(help="Per symbol, re-check this many rows with detect_regime_as_of."),
    ] = 0,
) -> None:
    """Fill regime_states for every (symbol, date) with enough history; resumable."""
    # lazy: sentinel.regime_backfill pulls hmmlearn and scikit-learn; sentinel.db pandas
    from sentinel.db import Store
    from sentinel.regime_backfill import BackfillReport, backfill_regime_states
    from sentinel.settings import get_settings

    if commit_every < 1 or workers < 1 or verify < 0:
        raise ConfigError("--commit-every and --workers must be >= 1, --verify >= 0")
    store = Store(db or state.database_url or get_settings().database_url)
    with CountingProgress(
        TextColumn("regime backfill"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("symbols, {task.fields[rows]:,} rows written"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("regime backfill (symbols)", total=None, rows=0)

        def on_progress(r: BackfillReport) -> None:
            progress.update(task, total=r.symbols, completed=r.symbols_done, rows=r.rows_written)

        report = backfill_regime_states(
            store, _symbols(symbols), start, end, commit_every=commit_every, workers=workers,
            verify=verify, on_progress=on_progress,
        )  # fmt: skip
    console.print(
        f"regime_states: {report.rows_written:,} rows written in {report.batches} batches, "
        f"{report.rows_existing:,} already present; {report.symbols_done - len(report.failures)}"
        f"/{report.symbols} symbols done in {report.seconds:.1f} s"
    )
    for symbol, error in report.failures.items():
        err_console.print(f"[red]failed:[/red] {escape(symbol)}: {escape(error)}", soft_wrap=True)
    if report.failures:
        raise typer.Exit(1)


def script_main(argv: list[str] | None = None) -> int:
    """``scripts/backfill_regime_states.py``: the ``backfill`` command on its own."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(backfill)
    try:
        single(args=argv if argv is not None else sys.argv[1:], standalone_mode=False)
    except SentinelError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted: committed rows are kept; rerun to resume")
        return 130
    return 0
