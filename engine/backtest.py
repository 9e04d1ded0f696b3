"""``sentinel backtest``: wire a config into the runner, run it, measure it, store it.

Steps: open the store the config names (building the demo universe when it is empty), prepare ML
(features once, training samples stamped with the day their label became known), run the one
runner loop with a simulation clock and a simulated broker, then compute metrics from the record
and write the outputs (metrics.json, trades.csv, equity.csv, report.html) and the database row.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.broker import SimulatedBroker
from engine.clock import SimulationClock, Tick
from engine.config import RunConfig
from engine.feed import BarFeed
from engine.portfolio import Portfolio
from engine.runner import RunLog, Runner
from sentinel.db import BacktestRun, Store
from sentinel.errors import ConfigError
from sentinel.planner import MLPolicy, Planner
from strategies import PlanContext

LOOKAHEAD_WARNING = (
    "ML mode 'current' scores the past with models trained on data up to today: the run "
    "uses the future (look-ahead) and its results are optimistic by construction."
)


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


class StrategyPlanner:
    """Adapts sentinel's Planner (scores) and a strategy (weights) to the runner's interface."""

    def __init__(self, planner: Planner, strategy, universe: Callable[[date], list[str]]):
        self.planner = planner
        self.strategy = strategy
        self.universe = universe
        self.scores_log: list[pd.DataFrame] = []

    def retrain(self, as_of: date) -> None:
        self.planner.retrain(as_of)

    def plan(self, as_of: date, current_weights: pd.Series) -> pd.Series:
        symbols = self.universe(as_of)
        closes = (
            self.planner.store.get_close_panel(
                symbols, days=self.strategy.history_days, end_date=as_of
            )
            if self.strategy.needs_history
            else pd.DataFrame()
        )
        if self.strategy.uses_scores:
            bars = None
            if getattr(self.planner, "needs_bars", True):
                bars = self.planner.history(as_of, symbols)
            scores = self.planner.scores(as_of, bars)
        else:  # a baseline that ignores scores: skip the wavelet/ML work entirely
            scores = pd.DataFrame(index=pd.Index(symbols, name="symbol", dtype=object))
        if self.strategy.uses_scores:
            self.scores_log.append(scores.assign(date=pd.Timestamp(as_of)))
        ctx = PlanContext(as_of, scores, closes, current_weights)
        return self.strategy.target_weights(ctx)


def open_run_store(cfg: RunConfig, url: str | None = None) -> Store:
    """The config's store; the demo universe is generated into an empty one."""
    from sentinel.data.demo import generate_demo_universe, install_demo
    from sentinel.data.importer import import_files

    store = Store(url or cfg.data.url)
    if store.price_span() is not None:
        return store
    if cfg.data.imports:
        for spec in cfg.data.imports:
            import_files(store, [Path(spec.path)], kind=spec.kind, skip_bad=spec.skip_bad,
                         adjust=spec.adjust)  # fmt: skip
    elif cfg.data.source == "store" and cfg.data.url and not url:
        raise ConfigError(
            f"data.url: the store {cfg.data.url} has no prices; import data into it first "
            "(sentinel --db URL data import FILE...) or list files under data.imports"
        )
    else:  # nothing imported: the main job runs on the demo universe
        install_demo(store, generate_demo_universe(cfg.data.demo_seed, cfg.data.demo_symbols))
    return store


#: Run-config ML keys that follow the settings (env, then /api/settings) unless the YAML sets them.
SETTING_KEYS = {
    "enabled": "ml_enabled",
    "blend_ratio": "ml_wavelet_blend_ratio",
    "horizon_days": "ml_prediction_horizon_days",
    "min_samples": "ml_min_samples_per_symbol",
}


def with_settings(cfg: RunConfig, store: Store) -> RunConfig:
    """``cfg`` with the ml keys it leaves unset taken from the effective settings.

    So a blend ratio saved through the API or the web UI is what the next backtest and live step
    use, while a config that names its own ratio (a sweep point, say) keeps it.
    """
    from sentinel.settings import effective_settings

    settings = effective_settings(store.get_stored_settings())
    given = cfg.ml.model_fields_set
    updates = {f"ml.{k}": getattr(settings, s) for k, s in SETTING_KEYS.items() if k not in given}
    return cfg.with_updates(updates) if updates else cfg


def universe_filter(cfg: RunConfig, store: Store) -> Callable[[date], list[str]]:
    """Symbols tradable on a day: the store's universe that day, narrowed by the config."""
    u = cfg.universe
    allowed = set(u.symbols) if u.kind == "list" else None
    sectors = set(u.sectors) if u.kind == "sector" else None
    secs = {s.symbol: s for s in store.securities()}
    if allowed is not None:
        unknown = sorted(allowed - set(secs))
        if unknown:
            raise ConfigError(f"universe.symbols: unknown symbol(s) {', '.join(unknown)}")

    def symbols(d: date) -> list[str]:
        out = store.universe_symbols(d)
        if allowed is not None:
            out = [s for s in out if s in allowed]
        if sectors is not None:
            out = [s for s in out if secs[s].sector in sectors]
        return out

    return symbols


def _period(cfg: RunConfig, store: Store) -> list[date]:
    days = [d for d in store.trading_days() if cfg.start <= d <= cfg.end]
    if len(days) < 2:
        span = store.price_span()
        raise ConfigError(
            f"start/end: no trading days between {cfg.start} and {cfg.end} "
            f"(the store holds {span[0]} .. {span[1]})"
            if span
            else "the store has no prices"
        )
    return days


def prepare_ml(cfg: RunConfig, store: Store, status: Callable[[str], None]):
    """Features once for the run, and training samples for walk-forward (idempotent upserts)."""
    from sentinel.ml.dataset import FeatureBook

    if not cfg.ml.active:
        return None
    status("computing features (causal, whole history once)")
    book = FeatureBook(store)
    ensure_samples(cfg, store, book, status)
    return book


def ensure_samples(cfg: RunConfig, store: Store, book=None, status=lambda msg: None) -> None:
    """Walk-forward needs training samples; generate them when missing or stale (idempotent)."""
    from sentinel.ml.dataset import generate_samples

    if not (cfg.ml.active and cfg.ml.mode == "walk_forward"):
        return
    full = store.view(None)
    span = full.price_span()
    have = full.get_training_samples(horizon_days=cfg.ml.horizon_days)
    if span and not have.empty:
        # samples are final up to (last bar - horizon); newer ones cannot exist yet
        newest_possible = span[1].toordinal() - cfg.ml.horizon_days - 7
        if have["date"].max().date().toordinal() >= newest_possible:
            return
    status("generating training samples (labels stamped with the day they were known)")
    generate_samples(store, horizon_days=cfg.ml.horizon_days, book=book)


def _current_predictor(cfg: RunConfig):
    from sentinel.ml.predictor import Predictor
    from sentinel.ml.store import ModelStore
    from sentinel.settings import get_settings

    ms = ModelStore(get_settings().models_dir)
    predictor = Predictor(ms)
    predictor.load()
    return predictor if predictor.symbols else None


def build_planner(
    cfg: RunConfig,
    store: Store,
    symbols_on: Callable[[date], list[str]],
    status: Callable[[str], None],
) -> tuple[Planner, Store, list[str]]:
    """The run's planner on its own simulation view of ``store``, and any warnings."""
    warnings: list[str] = []
    book = prepare_ml(cfg, store, status)
    predictor = None
    if cfg.ml.active and cfg.ml.mode == "current":
        warnings.append(LOOKAHEAD_WARNING)
        predictor = _current_predictor(cfg)
        if predictor is None:
            warnings.append("ML mode 'current': no stored models, wavelet scores only")
    policy = MLPolicy(
        enabled=cfg.ml.enabled, blend_ratio=cfg.ml.blend_ratio, mode=cfg.ml.mode,
        horizon_days=cfg.ml.horizon_days, min_samples=cfg.ml.min_samples,
        max_epochs=cfg.ml.max_epochs, seed=cfg.seed,
    )  # fmt: skip
    sim = store.view(None)
    planner = Planner(sim, policy, symbols=symbols_on, book=book, predictor=predictor)
    if book is not None:
        book.bound = sim
    return planner, sim, warnings


def run_backtest(
    cfg: RunConfig,
    *,
    store: Store | None = None,
    output: str | Path | None = None,
    on_tick: Callable[[Tick, int], None] | None = None,
    status: Callable[[str], None] = lambda msg: None,
    sweep_id: str | None = None,
    save: bool = True,
    planner: Any | None = None,
    write_report: bool = True,
) -> BacktestResult:
    """Run one backtest end to end and return everything it produced.

    ``planner`` replaces the ML planner (sweeps pass a replay of cached scores); the loop,
    broker, metrics and outputs are the same either way.
    """
    from engine.metrics import compute_metrics
    from engine.report import write_outputs

    store = store or open_run_store(cfg)
    store.preload()  # one read of the bars; every later read is served behind the same guard
    days = _period(cfg, store)
    symbols_on = universe_filter(cfg, store)
    if not symbols_on(days[0]) and not symbols_on(days[-1]):
        raise ConfigError(
            f"universe: no security is in the universe between {days[0]} and {days[-1]} "
            f"(kind {cfg.universe.kind!r}); check universe.symbols / universe.sectors"
        )
    if planner is None:
        planner, sim, warnings = build_planner(cfg, store, symbols_on, status)
    else:
        sim = planner.store
        warnings = [LOOKAHEAD_WARNING] if cfg.ml.active and cfg.ml.mode == "current" else []
    strategy = cfg.strategy.build()
    adapter = StrategyPlanner(planner, strategy, symbols_on)
    retrain = cfg.ml.retrain if cfg.ml.active and cfg.ml.mode == "walk_forward" else None
    clock = SimulationClock(days, cfg.rebalance, retrain)
    feed = BarFeed(store, None, days[0], days[-1])
    portfolio = Portfolio(cash=cfg.initial_cash)
    run_id = f"{cfg.name}-{cfg.config_hash()}"
    counter = {"n": 0}

    def tick_cb(tick: Tick) -> None:
        counter["n"] += 1
        if on_tick:
            on_tick(tick, counter["n"])

    status(f"running {len(days)} days, {len(clock.rebalance_dates)} rebalances")
    broker = SimulatedBroker(cfg.costs)
    runner = Runner(run_id=run_id, store=sim, clock=clock, broker=broker,
                    feed=feed, planner=adapter, portfolio=portfolio, on_tick=tick_cb,
                    min_trade_weight=cfg.rebalance.min_trade_weight,
                    fractional=cfg.costs.fractional)  # fmt: skip
    log = runner.run()
    sim.set_simulation_date(None)

    equity = portfolio.equity_frame()
    trades = portfolio.trades_frame()
    weights = portfolio.weights_frame()
    bench_sym = cfg.benchmark or store.market_symbol()
    bench = None
    if bench_sym:
        b = store.get_benchmark(bench_sym, start_date=days[0], end_date=days[-1])
        bench = b["close"] if not b.empty else None
        if bench is None:
            warnings.append(f"benchmark {bench_sym!r} has no data in the run's period")
    status("computing metrics")
    metrics = compute_metrics(equity["equity"], bench, trades, weights)
    metrics["n_rebalances"] = float(len(clock.rebalance_dates))
    metrics["n_retrains"] = float(len(log.retrains))
    predictions = (
        pd.concat(adapter.scores_log).reset_index() if adapter.scores_log else pd.DataFrame()
    )
    result = BacktestResult(cfg, run_id, equity, trades, weights, bench, metrics, warnings, log,
                            predictions, broker.cancelled)  # fmt: skip
    out = output or cfg.output
    if out and write_report:
        import yaml

        config_text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        result.outputs = write_outputs(
            Path(out), metrics=metrics, trades=trades, equity=equity["equity"], benchmark=bench,
            weights=weights, cash=equity["cash"], title=f"sentinel backtest: {cfg.name}",
            warnings=warnings, config_text=config_text,
        )  # fmt: skip
        if not predictions.empty:
            path = Path(out) / "predictions.csv"
            predictions.to_csv(path, index=False)
            result.outputs["predictions"] = path
    if save:
        result.db_id = store.save_backtest_run(
            BacktestRun(
                name=cfg.name, config_hash=cfg.config_hash(), created_at=datetime.now(UTC),
                sweep_id=sweep_id, config=cfg.model_dump(mode="json"),
                metrics={**metrics, "warnings": warnings},
                trades_csv=_csv(trades), equity_csv=_csv(equity.reset_index()),
            )
        )  # fmt: skip
    return result


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
    ]  # fmt: skip
