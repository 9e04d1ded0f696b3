"""Entry point: ``sentinel [--db URL] [--debug] COMMAND``.

Every :class:`~sentinel.errors.SentinelError` ends as one clear line and exit code 1; anything
unexpected as one line and exit code 2, with the traceback only under ``--debug``.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import click
import typer
from rich.markup import escape

from cli import data as data_cmd
from cli import ml as ml_cmd
from cli import regime as regime_cmd
from cli._common import err_console, require_existing_store, state
from cli.run import run_backtest_command, run_live_command, run_sweep_command
from sentinel.errors import SentinelError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

app = typer.Typer(
    name="sentinel",
    help="Event-driven backtests with point-in-time data and per-security ML scores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no <bool> type labels on flags, text as written
    context_settings={"max_content_width": 110},
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(ml_cmd.app, name="ml")
app.add_typer(regime_cmd.app, name="regime")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # lazy: only for --version

        print(f"sentinel {version('sentinel')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: SENTINEL_DATABASE_URL or sentinel.db)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    create: Annotated[
        bool, typer.Option("--create", help="Allow --db to name a SQLite file that does not exist.")
    ] = False,
    _show_version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    state.debug = debug
    state.database_url = db
    state.create = create
    if db and not create and ctx.invoked_subcommand != "serve":
        require_existing_store(db)


@app.command()
def backtest(
    config: Annotated[str, typer.Argument(help="Run config (YAML), e.g. configs/demo.yaml.")],
    output: Annotated[
        str | None, typer.Option(help="Output folder (overrides the config).")
    ] = None,
) -> None:
    """Run a backtest from a YAML config (the demo universe is generated into an empty store)."""
    run_backtest_command(config, output, state.database_url)


@app.command()
def sweep(
    config: Annotated[
        str, typer.Argument(help="Sweep config (YAML), e.g. configs/blend_sweep.yaml.")
    ],
    output: Annotated[
        str | None, typer.Option(help="Output folder (overrides the config).")
    ] = None,
) -> None:
    """Run a sweep over the blend ratio or any config key; finished points are kept."""
    run_sweep_command(config, output, state.database_url)


@app.command()
def live(
    config: Annotated[
        str, typer.Argument(help="Run config (YAML) with an optional live: section.")
    ],
    once: Annotated[
        bool, typer.Option("--once", help="Process one due day and exit (cron).")
    ] = False,
    replay: Annotated[
        bool, typer.Option("--replay", help="Replay the config's past days (parity check).")
    ] = False,
) -> None:
    """Run the same engine live: sync prices, rebalance when due, paper-trade the orders."""
    run_live_command(config, once, replay, state.database_url)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Interface to bind; loopback by default. Needs a real SENTINEL_API_TOKEN, "
            "except on loopback with SENTINEL_ENVIRONMENT=development."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run the weekly retrain job.")
    ] = True,
    log_level: Annotated[
        str, typer.Option(help="debug | info (logs every request) | warning | error.")
    ] = "info",
) -> None:
    """Serve the REST API, the web UI (/) and the weekly retrain (Sunday 23:00).

    Refuses to start without a real SENTINEL_API_TOKEN (16+ characters, not a placeholder) unless
    the host is loopback and SENTINEL_ENVIRONMENT=development is set.
    """
    from sentinel.api.main import serve as run_server  # lazy: FastAPI and uvicorn (~1 s)

    run_server(
        host, port, database_url=state.database_url, scheduler=scheduler, log_level=log_level
    )


def main() -> None:
    """Run the CLI, turning errors into one line and a non-zero exit."""
    try:
        code = app(standalone_mode=False)
        if code == 130:  # Typer returns Ctrl-C as 130 when not standalone: not a success
            raise KeyboardInterrupt
    except SentinelError as exc:
        if state.debug:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: one line, not a traceback
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if state.debug:
            raise
        err_console.print(
            f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))} "
            "(rerun with --debug for the traceback)",
            soft_wrap=True,
        )
        sys.exit(2)
