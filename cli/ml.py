"""sentinel ml: training samples, per-symbol models, status, backfill and drift.

Settings come from the environment and then the ml_* values stored through the API
(:func:`~sentinel.settings.effective_settings`), so the CLI trains what the API would.
Heavy imports (TensorFlow) happen inside the commands that need them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli._common import (
    CountingProgress,
    JsonOption,
    console,
    err_console,
    fmt_value,
    key_value_table,
    open_cli_store,
    print_json,
    working,
)
from sentinel.errors import ConfigError

app = typer.Typer(help="Per-symbol ML: samples, training, status, backfill, drift.",
                  no_args_is_help=True)  # fmt: skip


def _settings(store: Any) -> Any:
    from sentinel.settings import effective_settings  # lazy: pydantic-settings (start-up time)

    return effective_settings(store.records.get_stored_settings())


def _progress() -> CountingProgress:
    return CountingProgress()


def _date(text: str | None, option: str = "--start/--end") -> date | None:
    """An ISO date option (the CLI is where text becomes a date)."""
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
    from sentinel.ml.status import best_baseline

    for col in ("symbol", "samples", "RMSE", "MAE", "R²", "IC", "best baseline IC"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for sym in sorted(report.models):
        m = report.metrics.get(sym, {})
        name, ic = best_baseline(m)  # zero, reversal_20, momentum_60, ridge: the best to beat
        table.add_row(
            sym, str(report.samples.get(sym, "")), _fmt(m.get("validation_rmse")),
            _fmt(m.get("validation_mae")), _fmt(m.get("validation_r2"), 3),
            _fmt(m.get("validation_ic"), 3), f"{_fmt(ic, 3)} ({name})" if name else "n/a",
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
    model: str | None = None,
    target: str | None = None,
) -> Any:
    """Train every eligible symbol in one batched pass, save the models, print the summary.

    ``model`` / ``target`` (default: the settings ml_model / ml_target): ``pooled`` and
    ``hierarchical`` save one model, ``_pooled``; per-symbol models are trained on the return.
    """
    # lazy: sentinel.ml.training pulls TensorFlow and XGBoost
    from sentinel.ml.training import save_models, train_as_of
    from sentinel.settings import get_settings

    s = _settings(store)
    model = model or s.ml_model
    if model == "per_symbol" and (target or "return") != "return":
        raise ConfigError(f"--target {target}: per-symbol models are stored for the return "
                          "target; use --model pooled or hierarchical")  # fmt: skip
    target = "return" if model == "per_symbol" else target or s.ml_target
    horizon = s.ml_prediction_horizon_days
    if not store.signals.symbols_with_samples(horizon):
        raise ConfigError(
            f"no training samples in the store for the {horizon}-day horizon: "
            "run `sentinel ml samples` first"
        )
    root = models_dir or get_settings().models_dir
    with _progress() as progress:
        task = progress.add_task("reading samples", total=None)
        steps: dict[str, Any] = {}

        def status(msg: str) -> None:
            progress.update(task, description=msg)

        def epochs(done: int, total: int) -> None:  # the batched pass, in epoch steps
            if "task" not in steps:
                steps["task"] = progress.add_task("training: epoch steps", total=total)
            progress.update(steps["task"], completed=done, total=total)

        report = train_as_of(
            store, as_of=as_of, symbols=symbols, horizon_days=s.ml_prediction_horizon_days,
            min_samples=s.ml_min_samples_per_symbol, max_epochs=max_epochs, validate=validate,
            progress=status, epoch_progress=epochs, model=model, target=target,
        )  # fmt: skip
        if as_of is not None and not report.samples and not report.skipped:
            raise ConfigError(
                f"--as-of {as_of}: no training sample's label was known by then; pick a later date"
            )
        status(f"saving {len(report.models)} models to {root}")
        save_models(store, report, root, horizon_days=s.ml_prediction_horizon_days)
    if report.predictor is not None:
        console.print(f"{model} model (target {target}) saved as {root / '_pooled'}")
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
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols (default: every eligible one).")
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", hidden=True, help="Deprecated: use --symbols (repeatable)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Train on samples known by this date.")
    ] = None,
    max_epochs: Annotated[
        int, typer.Option(help="Upper bound of NN epochs (100: as the weekly retrain).")
    ] = 100,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Purged validation + diagnostic.")
    ] = True,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="per_symbol | pooled | hierarchical (default: the setting "
            "ml_model); pooled kinds are saved as one model, _pooled.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            help="return | excess | rank for pooled kinds (default: the setting ml_target).",
        ),
    ] = None,
) -> None:
    """Train NN + XGBoost ensembles (per symbol, batched, or pooled) and save them atomically."""
    from sentinel.ml.pooled import MODEL_KINDS, TARGETS  # lazy: pandas, the trainer

    if model is not None and model not in MODEL_KINDS:
        raise ConfigError(f"--model: one of {', '.join(MODEL_KINDS)}, not {model!r}")
    if target is not None and target not in TARGETS:
        raise ConfigError(f"--target: one of {', '.join(TARGETS)}, not {target!r}")
    run_training(
        open_cli_store(), symbols=(_split(symbols) or []) + list(symbol or []) or None,
        as_of=_date(as_of, "--as-of"),
        max_epochs=max_epochs,
        validate=validate,
        model=model,
        target=target,
    )  # fmt: skip


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Settings, models and their average validation figures (as GET /api/ml/status)."""
    from sentinel.ml.status import ml_status  # lazy: pandas and SQLAlchemy (start-up time)

    report = ml_status(open_cli_store())
    if as_json:
        print_json(report)
        return
    problems = {"broken model": report["broken_models"], "stale record": report["stale_records"]}
    hidden = ("broken_models", "stale_records", "pooled_model")
    shown = {k: v for k, v in report.items() if k not in hidden}
    shown["broken_models"] = len(report["broken_models"])
    shown["stale_records"] = len(report["stale_records"])
    console.print(key_value_table("ML status", shown))
    pooled = report.get("pooled_model")
    if pooled:  # the one pooled / hierarchical model, beside its best baseline
        console.print(escape(
            f"pooled model {pooled['symbol']} ({pooled['status']}, version {pooled['version']}): "
            f"{pooled['training_samples']:,} samples, IC {_fmt(pooled['validation_ic'], 3)}, "
            f"best baseline IC {_fmt(pooled['baseline_ic'], 3)} ({pooled['best_baseline']}), "
            f"trained to {pooled['train_end']}"), soft_wrap=True)  # fmt: skip
    for kind, items in problems.items():
        for sym, why in list(items.items())[:10]:
            console.print(escape(f"{kind} {sym}: {why}"), soft_wrap=True)
        if len(items) > 10:
            console.print(f"… and {len(items) - 10} more {kind}s (--json for all)")


@app.command()
def backfill(
    mode: Annotated[
        str,
        typer.Option(
            help="walk_forward (models as of each date) | current (look-ahead), as "
            "ml.mode in a run config."
        ),
    ] = "walk_forward",
    model: Annotated[
        str | None, typer.Option("--model", hidden=True, help="Deprecated: use --mode.")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date (default: the first bar).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date (default: the last bar).")] = None,
    every: Annotated[int, typer.Option(help="Every N-th trading day.")] = 1,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated symbols.")] = None,
    retrain: Annotated[
        str, typer.Option(help="Walk-forward retrain cadence: weekly|monthly|quarterly|yearly.")
    ] = "monthly",
    max_epochs: Annotated[
        int,
        typer.Option(help="NN epochs bound for walk-forward (60: as ml.max_epochs in a config)."),
    ] = 60,
    commit_every: Annotated[int, typer.Option(help="Dates per committed batch.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Fill the ml_predictions table for past dates (resumable: existing rows are skipped)."""
    mode = model or mode
    if mode not in ("walk_forward", "current"):
        raise ConfigError(f"--mode: walk_forward or current, not {mode!r}")
    if retrain not in ("weekly", "monthly", "quarterly", "yearly"):
        raise ConfigError(f"--retrain: weekly, monthly, quarterly or yearly, not {retrain!r}")
    from engine.backfill import backfill_predictions  # lazy: pandas; TensorFlow when training

    if mode == "current":
        console.print(
            "[yellow]warning:[/yellow] --mode current uses today's models on past dates: "
            "they were trained on that future (look-ahead); rows are marked model_mode=current"
        )
    store = open_cli_store()
    with _progress() as progress:
        task = progress.add_task("backfill", total=None)

        def tick(i: int, n: int, d: date) -> None:
            progress.update(task, completed=i, total=n, description=f"backfill {d}")

        rep = backfill_predictions(
            store, start=_date(start), end=_date(end), every=every, symbols=_split(symbols),
            mode=mode, retrain=retrain, max_epochs=max_epochs,  # type: ignore[arg-type]
            commit_every=commit_every,
            progress=tick,
        )  # fmt: skip
    if as_json:
        print_json(rep.summary())
    else:
        console.print(key_value_table("ML backfill", rep.summary()))


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
    as_json: JsonOption = False,
) -> None:
    """Live error and IC of matured predictions, and validation figures (/api/ml/performance)."""
    from sentinel.ml.drift import drift_report, update_realized_returns  # lazy: pandas

    store = open_cli_store()
    horizon = _settings(store).ml_prediction_horizon_days
    if update:
        n = update_realized_returns(store, horizon_days=horizon)
        (err_console if as_json else console).print(f"realised returns filled in: {n:,}")
    report = drift_report(
        store,
        window_days=window,
        as_of=_date(as_of, "--as-of"),
        horizon_days=horizon,
        model_mode=mode,
    )
    if as_json:
        print_json(report)
    else:
        _print_drift(report)


#: Per-symbol rows a drift table shows before "--json for all".
DRIFT_ROWS = 30


def _print_drift(report: dict[str, Any]) -> None:
    """Validation against live figures, overall and per symbol (the live rows of the window)."""
    live, val = report["live"], report["validation"]
    agg, vagg = live.get("aggregate") or {}, val.get("aggregate") or {}
    window = live.get("window")
    title = (f"drift: {live['n_predictions']:,} matured predictions "
             + (f"{window[0]} .. {window[1]}" if window else "(none in the window)"))  # fmt: skip
    table = Table(title=title)
    for col in ("figure", "validation (avg over symbols)", "live (window)"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for key, live_key in (("rmse", "rmse"), ("mae", "mae"), ("r2", "r2"), ("ic", "ic_pooled"),
                          ("hit_rate", "hit_rate")):  # fmt: skip
        validation = fmt_value(vagg.get(f"avg_validation_{key}"))
        table.add_row(key, validation, fmt_value(agg.get(live_key)))
    table.add_row("bias (pred - real)", "-", fmt_value(agg.get("bias")))
    console.print(table)
    per = live.get("per_symbol") or {}
    if not per:
        return
    table = Table(title="per symbol (live window)")
    for col in ("symbol", "n", "RMSE", "IC", "hit rate", "bias", "validation IC"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for sym in sorted(per)[:DRIFT_ROWS]:
        m = per[sym]
        table.add_row(
            sym, fmt_value(m.get("n")), fmt_value(m.get("rmse")), fmt_value(m.get("ic")),
            fmt_value(m.get("hit_rate")), fmt_value(m.get("bias")),
            fmt_value((val["per_symbol"].get(sym) or {}).get("ic")),
        )  # fmt: skip
    console.print(table)
    if len(per) > DRIFT_ROWS:
        console.print(f"… and {len(per) - DRIFT_ROWS} more symbols (--json for all)")


@app.command()
def evaluate(
    config: Annotated[str, typer.Argument(help="Run config (YAML) of a walk-forward ML run.")],
    output: Annotated[
        str | None,
        typer.Option(help="Folder for ml_eval.json/.csv/.html (default: <output>-ml_eval)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE config override (dotted key, YAML value), repeatable: "
            "--set ml.model=pooled --set ml.target=rank",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cross-sectional rank IC of each score and the baselines on each rebalance day."""
    import os

    from engine.config import load_config, parse_overrides  # lazy: pydantic and YAML only

    cfg = load_config(config)  # a config error shows before the engine is imported
    if set_:
        cfg = cfg.with_updates(parse_overrides(set_))
    from cli._common import state
    from engine.evaluate import evaluate_run, fmt, write_evaluation
    from engine.ml_report import write_page
    from engine.session import open_run_store

    store = open_run_store(cfg, state.database_url or os.environ.get("SENTINEL_DATABASE_URL"))
    with working("evaluating (a walk-forward backtest, then the joins)") as say:
        result = evaluate_run(cfg, store=store, status=say)
    folder = Path(output or f"{cfg.output or f'runs/{cfg.name}'}-ml_eval")
    paths = write_evaluation(folder, result)
    title = f"ML evaluation: {cfg.name}"
    paths["ml_eval.html"] = write_page(folder / "ml_eval.html", result, title)
    if as_json:
        print_json({**result.to_json(), "files": {k: str(v) for k, v in paths.items()}})
        return
    ev = result.evaluation
    table = Table(title=f"{cfg.name}: rank IC vs realised {ev.horizon_days}-day return "
                  f"({ev.days_known} days known, {ev.days_pending} not yet known)")  # fmt: skip
    # short headers: the table fits 80 columns (mean IC, ICIR, Newey-West t, share of days
    # with IC > 0, mean top-minus-bottom quintile return, turnover; docs/ml_validation.md)
    for col in ("score", "days", "IC", "ICIR", "t NW", "hit", "q5-q1", "turn"):
        table.add_column(col, justify="left" if col == "score" else "right", no_wrap=True)
    for name, s in ev.summary.items():
        table.add_row(
            name, str(s["n_days"]), fmt(s["mean_ic"]), fmt(s["icir"], 2), fmt(s["t_nw"], 2),
            fmt(s["hit_rate"], 2), fmt(s["spread_mean"], 4), fmt(s["turnover"], 2),
        )  # fmt: skip
    console.print(table)
    for name, s in ev.summary.items():  # the verdicts in words, one line each (no wrapping)
        console.print(f"{name}: {s['verdict']}", markup=False, soft_wrap=True)
    console.print(f"files: {folder}/ ({', '.join(sorted(paths))})")
