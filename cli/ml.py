"""``sentinel ml …``: training samples, per-symbol models, status, backfill and drift.

Settings come from the environment and then the ml_* values stored through the API
(:func:`~sentinel.settings.effective_settings`), so the CLI trains what the API would.
Heavy imports (TensorFlow) happen inside the commands that need them.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli._common import console, open_cli_store
from sentinel.errors import ConfigError

app = typer.Typer(help="Per-symbol ML: samples, training, status, backfill, drift.",
                  no_args_is_help=True)  # fmt: skip


def _settings(store: Any) -> Any:
    from sentinel.settings import effective_settings  # lazy: pydantic-settings (start-up time)

    return effective_settings(store.records.get_stored_settings())


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip


def _date(text: str | None, option: str = "--start/--end") -> date | None:
    """An ISO date option (the CLI is where text becomes a ``date``)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: not an ISO date (YYYY-MM-DD): {text!r}") from None


def _split(symbols: str | None) -> list[str] | None:
    return [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None


def _fmt(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{float(v):.{digits}f}"


@app.command()
def samples(
    incremental: Annotated[
        bool,
        typer.Option("--incremental/--full", help="Only the recent 90 days (the weekly job)."),
    ] = False,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: all).")
    ] = None,
    days: Annotated[int, typer.Option(help="Incremental window in days.")] = 90,
) -> None:
    """Generate weekly training samples (idempotent: re-running changes nothing)."""
    from sentinel.ml.dataset import FeatureBook, generate_samples  # lazy: pandas, scipy, pywt

    store = open_cli_store()
    horizon = _settings(store).ml_prediction_horizon_days
    wanted = _split(symbols)
    before = store.db.count("training_samples")
    with _progress() as progress:
        t_feat = progress.add_task("features (causal, whole history once)", total=None)
        book = FeatureBook(
            store, wanted, progress=lambda i, n: progress.update(t_feat, completed=i, total=n)
        )
        t_samp = progress.add_task("samples", total=len(book.symbols))
        written = generate_samples(
            store, wanted, horizon_days=horizon, book=book,
            incremental_days=days if incremental else None,
            progress=lambda i, n: progress.update(t_samp, completed=i, total=n),
        )  # fmt: skip
    after = store.db.count("training_samples")
    mode = f"incremental ({days} days)" if incremental else "full"
    console.print(
        f"{mode}: {sum(written.values()):,} samples written for {len(written)} symbols "
        f"(horizon {horizon} days); store: {before:,} -> {after:,} samples"
    )


def _summary_table(report: Any) -> Table:
    table = Table(title=f"trained {len(report.models)} symbols" + (
        f" as of {report.as_of}" if report.as_of else ""))  # fmt: skip
    for col in ("symbol", "samples", "RMSE", "MAE", "R²", "IC", "baseline IC (momentum)"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for sym in sorted(report.models):
        m = report.metrics.get(sym, {})
        base = (m.get("baselines") or {}).get("momentum", {})
        table.add_row(
            sym, str(report.samples.get(sym, "")), _fmt(m.get("validation_rmse")),
            _fmt(m.get("validation_mae")), _fmt(m.get("validation_r2"), 3),
            _fmt(m.get("validation_ic"), 3), _fmt(base.get("ic"), 3),
        )  # fmt: skip
    return table


def run_training(
    store: Any,
    *,
    symbols: list[str] | None = None,
    as_of: date | None = None,
    max_epochs: int = 100,
    validate: bool = True,
    models_dir: Path | None = None,
) -> Any:
    """Train every eligible symbol in one batched pass, save the models, print the summary."""
    # lazy: sentinel.ml.training pulls TensorFlow and XGBoost
    from sentinel.ml.training import save_models, train_as_of
    from sentinel.settings import get_settings

    s = _settings(store)
    horizon = s.ml_prediction_horizon_days
    if not store.signals.symbols_with_samples(horizon):
        raise ConfigError(
            f"no training samples in the store for the {horizon}-day horizon: "
            "run `sentinel ml samples` first"
        )
    root = models_dir or get_settings().models_dir
    with console.status("training") as status:
        report = train_as_of(
            store, as_of=as_of, symbols=symbols, horizon_days=s.ml_prediction_horizon_days,
            min_samples=s.ml_min_samples_per_symbol, max_epochs=max_epochs, validate=validate,
            progress=lambda msg: status.update(msg),
        )  # fmt: skip
        if as_of is not None and not report.samples and not report.skipped:
            raise ConfigError(
                f"--as-of {as_of}: no training sample's label was known by then; pick a later date"
            )
        status.update(f"saving {len(report.models)} models to {root}")
        save_models(store, report, root, horizon_days=s.ml_prediction_horizon_days)
    if report.models:
        console.print(_summary_table(report))
    for sym, why in sorted(report.skipped.items()):
        console.print(escape(f"skipped {sym}: {why}"), soft_wrap=True)
    for sym, why in sorted(report.failed.items()):
        console.print(escape(f"[failed] {sym}: {why}"), style="red", soft_wrap=True)
    console.print(
        f"{len(report.models)} trained, {len(report.skipped)} skipped, {len(report.failed)} failed"
        f"; models in {root}"
    )
    return report


@app.command()
def train(
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Only this symbol (repeatable).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Train on samples known by this date.")
    ] = None,
    max_epochs: Annotated[int, typer.Option(help="Upper bound of NN epochs.")] = 100,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Purged validation + diagnostic.")
    ] = True,
) -> None:
    """Train per-symbol NN + XGBoost ensembles (batched) and save them atomically."""
    run_training(
        open_cli_store(), symbols=symbol or None, as_of=_date(as_of, "--as-of"),
        max_epochs=max_epochs,
        validate=validate,
    )  # fmt: skip


@app.command()
def status() -> None:
    """The ``/api/ml/status`` JSON: settings, models and their average validation figures."""
    from sentinel.ml.status import ml_status  # lazy: pandas and SQLAlchemy (start-up time)

    console.print_json(json.dumps(ml_status(open_cli_store())))


@app.command()
def backfill(
    model: Annotated[
        str, typer.Option(help="walk_forward (models as of each date) | current (look-ahead).")
    ] = "walk_forward",
    start: Annotated[str | None, typer.Option(help="First date (default: the first bar).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date (default: the last bar).")] = None,
    every: Annotated[int, typer.Option(help="Every N-th trading day.")] = 1,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols.")] = None,
    retrain: Annotated[
        str, typer.Option(help="Walk-forward retrain cadence: weekly|monthly|quarterly|yearly.")
    ] = "monthly",
    max_epochs: Annotated[int, typer.Option(help="NN epochs bound for walk-forward.")] = 60,
    commit_every: Annotated[int, typer.Option(help="Dates per committed batch.")] = 20,
) -> None:
    """Fill ``ml_predictions`` for past dates (resumable: existing rows are skipped)."""
    from engine.backfill import backfill_predictions  # lazy: pandas; TensorFlow when training

    if model not in ("walk_forward", "current"):
        raise ConfigError(f"--model must be walk_forward or current, not {model!r}")
    if retrain not in ("weekly", "monthly", "quarterly", "yearly"):
        raise ConfigError(f"--retrain: weekly, monthly, quarterly or yearly, not {retrain!r}")
    if model == "current":
        console.print(
            "[yellow]warning:[/yellow] --model current uses today's models on past dates: "
            "they were trained on that future (look-ahead); rows are marked model_mode=current"
        )
    store = open_cli_store()
    with _progress() as progress:
        task = progress.add_task("backfill", total=None)

        def tick(i: int, n: int, d: date) -> None:
            progress.update(task, completed=i, total=n, description=f"backfill {d}")

        rep = backfill_predictions(
            store, start=_date(start), end=_date(end), every=every, symbols=_split(symbols),
            mode=model, retrain=retrain, max_epochs=max_epochs,  # type: ignore[arg-type]
            commit_every=commit_every,
            progress=tick,
        )  # fmt: skip
    console.print_json(json.dumps(rep.summary()))


@app.command()
def drift(
    window: Annotated[
        int, typer.Option(help="Trailing window of matured predictions (days).")
    ] = 90,
    as_of: Annotated[str | None, typer.Option("--as-of", help="End of the window.")] = None,
    mode: Annotated[
        str | None, typer.Option(help="Only rows of this model_mode (walk_forward | current).")
    ] = None,
    update: Annotated[
        bool, typer.Option("--update/--no-update", help="First fill matured realised returns.")
    ] = True,
) -> None:
    """Live error and IC of matured predictions, and validation figures (/api/ml/performance)."""
    from sentinel.ml.drift import drift_report, update_realized_returns  # lazy: pandas

    store = open_cli_store()
    horizon = _settings(store).ml_prediction_horizon_days
    if update:
        n = update_realized_returns(store, horizon_days=horizon)
        console.print(f"realised returns filled in: {n:,}")
    report = drift_report(
        store,
        window_days=window,
        as_of=_date(as_of, "--as-of"),
        horizon_days=horizon,
        model_mode=mode,
    )
    console.print_json(json.dumps(report))
