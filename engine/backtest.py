"""``sentinel backtest``: a session from the config, the one runner over it, metrics, outputs.

Steps: open the store the config names (building the demo universe when it is empty), build the
session (:mod:`engine.session`: settings, ML inputs, planner, strategy), run the runner with a
simulation clock and a simulated broker, then compute metrics from the record and write the
outputs (metrics.json, trades.csv, equity.csv, report.html, predictions.csv: a folder replaced
whole, see :func:`engine.report.staged_folder`) and, once they are in place, the database row.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from engine.broker import SimulatedBroker
from engine.clock import Tick
from engine.config import RunConfig
from engine.costs import capped_summary
from engine.evaluate import ImportanceLog, forward_returns
from engine.nn_importance import NetworkImportance
from engine.portfolio import Portfolio
from engine.runner import RunLog
from engine.session import ScorePlanner, build_session, open_run_store
from sentinel.db import BacktestRun, Store
from sentinel.ml.errors import load_problem


@dataclass
class BacktestResult:
    config: RunConfig
    run_id: str
    equity: pd.DataFrame
    trades: pd.DataFrame
    weights: pd.DataFrame
    benchmark: pd.Series | None
    metrics: dict[str, Any]
    warnings: list[str]
    log: RunLog
    predictions: pd.DataFrame
    cancelled: list = field(default_factory=list)  # (day, order, reason) the broker refused
    db_id: int | None = None
    outputs: dict[str, Path] = field(default_factory=dict)


def run_backtest(
    cfg: RunConfig,
    *,
    store: Store | None = None,
    output: str | Path | None = None,
    on_tick: Callable[[Tick, int], None] | None = None,
    status: Callable[[str], None] = lambda msg: None,
    sweep_id: str | None = None,
    save: bool = True,
    planner: ScorePlanner | None = None,
    write_report: bool = True,
    report_folder: str | Path | None = None,
) -> BacktestResult:
    """Run one backtest end to end and return everything it produced.

    ``planner`` replaces the ML planner (sweeps pass a replay of cached scores); the loop,
    broker, metrics and outputs are the same either way. ``report_folder`` is the folder the
    stored row names when this run writes no report of its own (a sweep point: the sweep's).
    """
    from engine.corporate_actions import book_event_metrics
    from engine.metrics import compute_metrics  # lazy: vectorbt and numba load slowly
    from engine.report import check_output_folder, write_outputs  # lazy: plotly
    from engine.tearsheet.labels import figure_warnings

    out = output or cfg.output
    if out and write_report:
        check_output_folder(out)  # before minutes of work, not after
    store = store or open_run_store(cfg)
    session = build_session(cfg, store, planner=planner, status=status)
    cfg, days, warnings = session.cfg, session.days, session.warnings
    clock = session.clock()
    portfolio = Portfolio(cash=cfg.initial_cash)
    run_id = session.run_id
    counter = {"n": 0}

    def tick_cb(tick: Tick) -> None:
        counter["n"] += 1
        if on_tick:
            on_tick(tick, counter["n"])

    status(f"running {len(days)} days, {len(clock.rebalance_dates)} rebalances")
    broker = SimulatedBroker(cfg.costs)
    importance = ImportanceLog()  # XGBoost gain of the latest retrain, for the report
    network = NetworkImportance(int(cfg.ml.horizon_days or 14),
                                book=getattr(session.planner, "book", None))  # fmt: skip
    if getattr(session.planner, "on_retrain", False) is None:

        def on_retrain(day: Any, report: Any) -> None:
            importance(day, report)
            if out and write_report:  # only the report measures them: no run keeps 500 networks
                network(day, report)  # through the next retrain for nothing

        session.planner.on_retrain = on_retrain  # type: ignore[attr-defined]
    log = session.runner(broker=broker, portfolio=portfolio, clock=clock, on_tick=tick_cb).run()
    adapter = session.decider

    equity = portfolio.equity_frame()
    trades = portfolio.trades_frame()
    weights = portfolio.weights_frame()
    bench_sym = cfg.benchmark or store.market.market_symbol()
    bench = None
    if bench_sym:
        b = store.market.get_benchmark(bench_sym, start_date=days[0], end_date=days[-1])
        bench = b["close"] if not b.empty else None
        if bench is None:
            warnings.append(f"benchmark {bench_sym!r} has no data in the run's period")
    status("computing metrics")
    metrics = compute_metrics(equity["equity"], bench, trades, weights,
                              initial_capital=cfg.initial_cash)  # fmt: skip
    metrics["n_rebalances"] = float(len(clock.rebalance_dates))
    metrics["n_retrains"] = float(len(log.retrains))
    metrics["n_capped_orders"] = float(len(broker.capped))
    metrics["survivorship_biased"] = session.survivorship_biased
    metrics.update(book_event_metrics(log.book_events, log.settlements))
    if broker.capped:
        warnings.append(capped_summary(cfg.costs, broker.capped))
    predictions = (
        pd.concat(adapter.scores_log).reset_index() if adapter.scores_log else pd.DataFrame()
    )
    if out and write_report:  # predictions.csv: what each prediction turned into, once known
        predictions = with_realised(store, predictions, int(cfg.ml.horizon_days or 14), days[-1])
    load_errors = model_load_errors(predictions, session.planner)
    metrics["n_model_load_errors"] = float(len(load_errors))
    if load_errors:
        metrics["model_load_errors"] = load_errors
        warnings.append(
            f"{len(load_errors)} model(s) failed to load; those symbols used the wavelet score "
            "alone: " + "; ".join(f"{sym}: {why}" for sym, why in load_errors.items())
        )
    warnings.extend(w for w in figure_warnings(metrics, cfg.initial_cash) if w not in warnings)
    result = BacktestResult(cfg, run_id, equity, trades, weights, bench, metrics, warnings, log,
                            predictions, broker.cancelled)  # fmt: skip
    # the folder whole (replaced at once), then its database row: a kill leaves the previous
    # folder, or the new one without its row, never a mix
    if out and write_report:
        config_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        from engine.ml_report import backtest_sections  # lazy: the ML report's figures and stats

        ml_sections = backtest_sections(store, cfg, predictions, log.retrains, days[-1],
                                        book=getattr(session.planner, "book", None),
                                        importance=importance, network=network)  # fmt: skip
        result.outputs = write_outputs(
            Path(out), metrics=metrics, trades=trades, equity=equity["equity"], benchmark=bench,
            weights=weights, cash=equity["cash"], title=f"sentinel backtest: {cfg.name}",
            warnings=warnings, config_text=config_text,
            tables={"predictions": predictions} if not predictions.empty else None,
            sectors={s.symbol: s.sector for s in store.market.securities()},
            capital=cfg.initial_cash, sections=ml_sections,
        )  # fmt: skip
    if save:
        # the row names the folder its report is in (absolute: the service may run elsewhere)
        folder = Path(out) if out and write_report else report_folder
        stored = cfg.model_dump(mode="json")
        stored["output"] = str(Path(folder).resolve()) if folder else None
        result.db_id = store.records.save_backtest_run(
            BacktestRun(
                name=cfg.name, config_hash=cfg.config_hash(), created_at=datetime.now(UTC),
                sweep_id=sweep_id, config=stored, metrics={**metrics, "warnings": warnings},
                trades_csv=_csv(trades), equity_csv=_csv(_with_benchmark(equity, bench)),
            )
        )  # fmt: skip
    return result


def _with_benchmark(equity: pd.DataFrame, bench: pd.Series | None) -> pd.DataFrame:
    """The equity rows with the benchmark's close beside them (what the run compared with)."""
    rows = equity.reset_index()
    if bench is not None:
        closes = pd.Series(bench.to_numpy(dtype=float), index=pd.to_datetime(bench.index))
        rows["benchmark"] = closes.reindex(equity.index).to_numpy()
    return rows


def with_realised(store: Store, predictions: pd.DataFrame, horizon_days: int, end: Any):
    """``predictions`` with ``realised_return`` (the forward return over the ML horizon, as
    :func:`engine.evaluate.forward_returns` defines it) and ``known``: a row whose horizon ends
    after the run's last day ``end`` has no realised return yet (NaN, ``known`` False)."""
    if predictions.empty or not {"date", "symbol"} <= set(predictions.columns):
        return predictions
    realised = forward_returns(store, predictions[["date", "symbol"]], horizon_days, end)
    known = realised.notna().to_numpy()
    return predictions.assign(realised_return=realised.to_numpy(), known=known)


#: How the planner's fallback column names a model that failed to load.
_LOAD_ERROR = "model load error: "


def model_load_errors(predictions: pd.DataFrame, planner: Any = None) -> dict[str, str]:
    """Symbols the run scored without their model because it failed to load, with the reason.

    Read from the scores' ``fallback`` column (so a sweep's replayed scores report them too); the
    reason comes untruncated from the planner's predictor when it has one.
    """
    if predictions.empty or "fallback" not in predictions or "symbol" not in predictions:
        return {}
    known = getattr(getattr(planner, "predictor", None), "load_errors", None) or {}
    hit = predictions["fallback"].map(lambda v: isinstance(v, str) and v.startswith(_LOAD_ERROR))
    found = {}
    for sym, text in zip(predictions.loc[hit, "symbol"], predictions.loc[hit, "fallback"],
                         strict=True):  # fmt: skip
        found[str(sym)] = load_problem(known[sym]) if sym in known else text[len(_LOAD_ERROR) :]
    return dict(sorted(found.items()))


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def summary_lines(result: BacktestResult) -> list[tuple[str, str]]:
    """The figures the CLI prints after a run."""
    m = result.metrics

    def pct(k: str) -> str:
        v = m.get(k)
        return "n/a" if v is None else f"{v * 100:.2f}%"

    def num(k: str) -> str:
        v = m.get(k)
        return "n/a" if v is None else f"{v:.2f}"

    return [
        ("CAGR", pct("cagr")), ("benchmark CAGR", pct("benchmark_cagr")),
        ("excess return", pct("excess_return")), ("volatility", pct("annualized_volatility")),
        ("Sharpe", num("sharpe_ratio")), ("Sortino", num("sortino_ratio")),
        ("max drawdown", pct("max_drawdown")), ("Calmar", num("calmar_ratio")),
        ("turnover / year", pct("turnover")), ("hit rate", pct("hit_rate")),
        ("trades", f"{int(m.get('n_trades') or 0)}"), ("retrains", f"{int(m['n_retrains'])}"),
        ("model load errors", f"{int(m.get('n_model_load_errors') or 0)}"),
    ]  # fmt: skip
