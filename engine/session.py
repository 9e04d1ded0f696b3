"""The one composition root: a run config in, everything a simulated or live day needs out.

:func:`build_session` resolves the config against the settings, opens the ML inputs (features
once, training samples), and builds the universe filter, the planner (or the sweep's replay of
cached scores), the strategy and the decider the runner calls. Backtests, live mode (replay and
``--once``), the sweep's score pass and the ML prediction backfill all start here and all drive
:class:`engine.runner.Runner`; they differ only in the clock, the broker and the feed.

Nothing here sets "now": the runner makes one store view per tick and hands it down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from engine.broker import Broker
from engine.calendar import calendar_days
from engine.clock import SimulationClock, Tick
from engine.config import RunConfig
from engine.costs import CostModel
from engine.feed import BarFeed
from engine.portfolio import Portfolio
from engine.runner import Runner
from engine.train_executor import train_mapper
from sentinel.data.demo import generate_demo_universe, install_demo
from sentinel.data.importer import import_files
from sentinel.db import Store
from sentinel.errors import ConfigError
from sentinel.feature_registry import mismatch as feature_mismatch
from sentinel.ml.dataset import FeatureBook, generate_samples
from sentinel.ml.policy import MLPolicy
from sentinel.planner import Planner
from sentinel.settings import Settings, effective_settings, get_settings
from strategies import PlanContext, Strategy
from strategies.base import ArrayContext, Targets, no_weights

SURVIVORSHIP_WARNING = (
    "Survivorship bias: the universe is the store's securities with no dated listings or index "
    "membership, so names that were delisted or left the index before the data's end are missing "
    "and results are optimistic (import a listings or membership file, universe kind index)."
)

LOOKAHEAD_WARNING = (
    "ML mode 'current' scores the past with models trained on data up to today: the run "
    "uses the future (look-ahead) and its results are optimistic by construction."
)

#: Run-config ML keys that follow the settings (env, then /api/settings) unless the YAML sets them.
SETTING_KEYS = {
    "enabled": "ml_enabled",
    "blend_ratio": "ml_wavelet_blend_ratio",
    "horizon_days": "ml_prediction_horizon_days",
    "min_samples": "ml_min_samples_per_symbol",
    "model": "ml_model",
    "target": "ml_target",
}


# -- the store and the config --------------------------------------------------------------------
def open_run_store(cfg: RunConfig, url: str | None = None) -> Store:
    """The config's store; the demo universe is generated into an empty one."""
    store = Store(url or cfg.data.url or get_settings().database_url)
    if store.market.price_span() is not None:
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


def run_settings(store: Store) -> Settings:
    """The effective settings for a run: environment, then the ml_* values stored via the API."""
    return effective_settings(store.records.get_stored_settings(), get_settings())


def resolve_config(cfg: RunConfig, settings: Settings) -> RunConfig:
    """``cfg`` with the ml keys it leaves unset (None) taken from ``settings``.

    So a blend ratio saved through the API or the web UI is what the next backtest, sweep and live
    step use, while a config that names its own ratio (a sweep point, say) keeps it. Idempotent.
    """
    updates = {
        f"ml.{k}": getattr(settings, s)
        for k, s in SETTING_KEYS.items()
        if getattr(cfg.ml, k) is None
    }
    return cfg.with_updates(updates) if updates else cfg


def ml_policy(cfg: RunConfig, settings: Settings) -> MLPolicy:
    """The run's ML policy: the one place a run config and the settings meet."""
    ml = cfg.ml
    return MLPolicy.from_settings(
        settings, enabled=ml.enabled, blend_ratio=ml.blend_ratio, mode=ml.mode,
        horizon_days=ml.horizon_days, min_samples=ml.min_samples, max_epochs=ml.max_epochs,
        seed=cfg.seed, model=ml.model, target=ml.target, label_from=ml.label_from,
        select_every=ml.select_every, warm_start=ml.warm_start,
    )  # fmt: skip


def trading_period(cfg: RunConfig, store: Store) -> list[date]:
    """The store's trading days between the config's start and end (at least two)."""
    days = [d for d in store.market.trading_days() if cfg.start <= d <= cfg.end]
    if len(days) < 2:
        span = store.market.price_span()
        raise ConfigError(
            f"start/end: no trading days between {cfg.start} and {cfg.end} "
            f"(the store holds {span[0]} .. {span[1]})"
            if span
            else "the store has no prices"
        )
    return days


def check_benchmark(cfg: RunConfig, store: Store) -> None:
    """A benchmark the config names must be in the store (a typo is an error, not a warning)."""
    if cfg.benchmark is None:
        return
    have = store.market.benchmark_symbols()
    if cfg.benchmark not in have:
        shown = ", ".join(have[:10]) + (f" (and {len(have) - 10} more)" if len(have) > 10 else "")
        raise ConfigError(
            f"benchmark: unknown benchmark {cfg.benchmark!r}; the store's benchmarks: "
            f"{shown or 'none (import one with sentinel data import FILE --kind benchmark)'}"
        )


def universe_filter(cfg: RunConfig, store: Store) -> Callable[[date], list[str]]:
    """Symbols tradable on a day: the store's universe that day, narrowed by the config."""
    u = cfg.universe
    allowed = set(u.symbols) if u.kind == "list" else None
    sectors = set(u.sectors) if u.kind == "sector" else None
    secs = {s.symbol: s for s in store.market.securities()}
    if allowed is not None:
        unknown = sorted(allowed - set(secs))
        if unknown:
            raise ConfigError(f"universe.symbols: unknown symbol(s) {', '.join(unknown)}")
    dated_sectors = bool(store.market.history_sectors())
    if sectors is not None:
        known = {s.sector for s in secs.values() if s.sector} | store.market.history_sectors()
        unknown = sorted(sectors - known)
        if unknown:
            raise ConfigError(
                f"universe.sectors: unknown sector(s) {', '.join(map(repr, unknown))}; "
                f"the store's sectors: {', '.join(sorted(known)) or 'none'}"
            )

    if u.kind == "index" and u.name not in store.market.index_names():
        have = ", ".join(store.market.index_names()) or "none (sentinel data import FILE)"
        raise ConfigError(f"universe.name: no membership for index {u.name!r}; stored: {have}")

    narrowed: dict[tuple[str, ...], list[str]] = {}  # the store's universe -> the listed part

    def symbols(d: date) -> list[str]:
        out = store.market.universe_symbols(d, stale_after=u.stale_after)
        if allowed is not None and not allowed.issuperset(out):  # the check runs in C
            key = tuple(out)  # the store's universe rarely changes: filter each one once
            if key not in narrowed:
                if len(narrowed) >= 64:
                    narrowed.clear()
                narrowed[key] = [s for s in out if s in allowed]
            out = list(narrowed[key])
        if sectors is not None:  # the sector each symbol had that day, when histories exist
            on = store.market.sectors_as_of(d) if dated_sectors else {}
            out = [s for s in out if on.get(s, secs[s].sector) in sectors]
        if u.kind == "index":  # point-in-time members: the survivors and the departed
            members = set(store.market.index_members(u.name or "", d))
            out = [s for s in out if s in members]
        return out

    return symbols


def ensure_samples(
    cfg: RunConfig,
    store: Store,
    book: FeatureBook | None = None,
    status: Callable[[str], None] = lambda msg: None,
) -> None:
    """Walk-forward needs training samples; generate them when missing or stale (idempotent)."""
    if not cfg.ml.walk_forward:
        return
    full = store.view(None)
    span = full.market.price_span()
    newest = full.signals.newest_sample_date(cfg.ml.horizon_days)
    if span and newest is not None:
        # samples are final up to (last bar - horizon); newer ones cannot exist yet
        newest_possible = span[1].toordinal() - cfg.ml.horizon_days - 7
        if newest.toordinal() >= newest_possible:
            return
    status("generating training samples (labels stamped with the day they were known)")
    generate_samples(full, horizon_days=cfg.ml.horizon_days, book=book)


def current_models(
    models_dir: Path, symbols: Iterable[str] | None = None, features: list[str] | None = None
):
    """A predictor over the stored models (``ml.mode: current``) and each one's model id.

    With ``features`` (the run's ``ml.features``), a model trained on other inputs is refused:
    its load error says which features it was trained with.
    """
    from sentinel.ml.model_files import ModelStore  # lazy: the model files pull TF and XGBoost
    from sentinel.ml.predictor import Predictor

    predictor = Predictor(ModelStore(models_dir))
    if symbols is None:
        wanted = None
    else:
        wanted = [s for s in symbols if (models_dir / s).exists()
                  or (models_dir / s).is_symlink()]  # fmt: skip
    if features is not None:
        refused = _feature_mismatches(predictor.store, wanted, features)
        predictor.load_errors.update(refused)
        wanted = [s for s in (predictor.store.symbols() if wanted is None else wanted)
                  if s not in refused]  # fmt: skip
    predictor.load(wanted)
    ids = {s: f"current:{(models_dir / s).resolve().name}" for s in predictor.symbols}
    return predictor, ids


def _feature_mismatches(model_store, symbols: list[str] | None, features: list[str]):
    """symbol -> why its stored model cannot serve a run with ``features`` (other inputs)."""
    from sentinel.ml.errors import MLError  # lazy: see current_models

    out: dict[str, str] = {}
    for sym in model_store.symbols() if symbols is None else symbols:
        try:
            trained = model_store.read_metadata(sym)["ensemble"].get("features")
        except MLError:
            continue  # a broken model: load() names its own problem
        problem = feature_mismatch(trained, features)
        if problem:
            out[sym] = problem
    return out


# -- what the runner calls -----------------------------------------------------------------------
class ScorePlanner(Protocol):
    """The domain planner or the sweep's replay: scores a day through the view it is handed."""

    needs_bars: bool

    def retrain(self, view: Store) -> None: ...

    def history(self, view: Store, symbols: list[str]) -> pd.DataFrame: ...

    def scores(self, view: Store, bars: pd.DataFrame | None = None) -> pd.DataFrame: ...


class ScoredStrategy:
    """The runner's decider: scores from the planner, target weights from the strategy.

    Every rebalance day's scores are kept in ``scores_log`` (the run's predictions.csv; the
    sweep's score cache).
    """

    def __init__(
        self,
        planner: ScorePlanner,
        strategy: Strategy,
        universe: Callable[[date], list[str]],
    ):
        self.planner = planner
        self.strategy = strategy
        self.universe = universe
        self.scores_log: list[pd.DataFrame] = []
        self.score_days: list[date] = []  # the day of each scores_log entry (some are empty)
        #: Whether :meth:`plan` needs the book's weights (the runner skips building them if not).
        self.needs_weights = strategy.needs_weights
        #: Whether :meth:`plan` takes the strategy's array path (no scores, no DataFrames).
        self.array_path = strategy.array_path and not strategy.uses_scores

    def retrain(self, view: Store) -> None:
        self.planner.retrain(view)

    def plan(self, view: Store, current_weights: pd.Series) -> pd.Series | Targets:
        day = view.day
        symbols = self.universe(day)
        if self.array_path:
            return self._plan_arrays(view, day, symbols, current_weights)
        closes = (
            view.market.get_close_panel(symbols, days=self.strategy.history_days, end_date=day)
            if self.strategy.needs_history
            else pd.DataFrame()
        )
        if self.strategy.uses_scores:
            bars = self.planner.history(view, symbols) if self.planner.needs_bars else None
            scores = self.planner.scores(view, bars)
            self.scores_log.append(scores.assign(date=pd.Timestamp(day)))
            self.score_days.append(day)
        else:  # a baseline that ignores scores: skip the wavelet/ML work entirely
            scores = pd.DataFrame({}, index=_symbol_index(symbols, closes))
        return self.strategy.target_weights(PlanContext(day, scores, closes, current_weights))

    def _plan_arrays(
        self, view: Store, day: date, symbols: list[str], current_weights: pd.Series
    ) -> Targets:
        """A strategy's array path: the close panel as numpy, the weights as arrays (the
        runner's decision log builds their Series only if read)."""
        strategy = self.strategy
        if strategy.needs_history:
            panel = view.market.get_close_block(symbols, days=strategy.history_days, end_date=day)
            values, columns = panel.values, panel.symbols
        else:
            values, columns = _NO_CLOSES, _NO_SYMBOLS
        return strategy.target_array(ArrayContext(day, values, columns, symbols, current_weights))


#: An array-path strategy's closes when it needs no history (read-only, shared).
_NO_CLOSES = np.empty((0, 0))
_NO_CLOSES.flags.writeable = False
_NO_SYMBOLS = pd.Index([], dtype=np.dtype(object), name="symbol")


def _symbol_index(symbols: list[str], closes: pd.DataFrame) -> pd.Index:
    """``symbols`` as an object index named symbol. The panel's columns are those of ``symbols``
    with bars, in order: when none is missing they are the same labels, reused (building an
    index from strings costs more than the rest of a rebalance's plan)."""
    columns = closes.columns
    if symbols and columns.name == "symbol" and columns.tolist() == symbols:
        return columns
    return pd.Index(np.array(symbols, dtype=object), dtype=np.dtype(object), copy=False,
                    name="symbol")  # fmt: skip


class ScoresOnly(Strategy):
    """Holds nothing and asks for scores: the sweep's score pass and the backfill record them."""

    name = "scores_only"
    needs_weights = False

    def target_weights(self, ctx: PlanContext) -> pd.Series:
        return no_weights()


# -- the session ---------------------------------------------------------------------------------
@dataclass
class Session:
    """A resolved run config and the parts built from it; :meth:`runner` wires one run."""

    cfg: RunConfig
    store: Store
    universe: Callable[[date], list[str]]
    planner: ScorePlanner
    decider: ScoredStrategy
    warnings: list[str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    survivorship_biased: bool = False  # universe from today's survivors, not dated membership

    @property
    def run_id(self) -> str:
        return f"{self.cfg.name}-{self.cfg.config_hash()}"

    @property
    def liquidity_days(self) -> int | None:
        """Days of volume and volatility the cost model needs (None: fixed costs, no cap)."""
        return self.cfg.costs.adv_days if CostModel(self.cfg.costs).needs_liquidity else None

    def clock(self) -> SimulationClock:
        """The simulation clock over the run's days (retrains only in walk-forward mode)."""
        retrain = self.cfg.ml.retrain if self.cfg.ml.walk_forward else None
        return SimulationClock(self.days, self.cfg.rebalance, retrain,
                               calendar=self.cfg.calendar, start=self.cfg.start)  # fmt: skip

    def runner(
        self,
        *,
        broker: Broker,
        portfolio: Portfolio,
        clock: Iterable[Tick] | None = None,
        feed: Any | None = None,
        run_id: str | None = None,
        on_tick: Callable[[Tick], None] | None = None,
    ) -> Runner:
        """The one runner, on this session's store and decider."""
        return Runner(
            run_id=run_id or self.run_id, store=self.store,
            clock=self.clock() if clock is None else clock, broker=broker,
            feed=feed or BarFeed(self.store, None, self.days[0], self.days[-1],
                                 self.liquidity_days),
            decider=self.decider, portfolio=portfolio,
            min_trade_weight=self.cfg.rebalance.min_trade_weight,
            fractional=self.cfg.costs.fractional, on_tick=on_tick,
            dividend_tax=self.cfg.costs.dividend_tax, stale_after=self.cfg.universe.stale_after,
        )  # fmt: skip


def build_session(
    cfg: RunConfig,
    store: Store,
    *,
    planner: ScorePlanner | None = None,
    strategy: Strategy | None = None,
    simulate: bool = True,
    models_dir: Path | None = None,
    status: Callable[[str], None] = lambda msg: None,
) -> Session:
    """Everything one run needs, from its config.

    ``planner`` replaces the ML planner (the sweep replays cached scores); ``strategy`` replaces
    the config's (the score pass and the backfill record scores only). ``simulate`` checks the
    period and the universe and preloads the bars (live mode walks its own days).
    """
    settings = run_settings(store)
    cfg = resolve_config(cfg, settings)
    local_training = cfg.ml.walk_forward and cfg.ml.train_executor.kind == "local"
    days: list[date] = []
    calendar_notes: list[str] = []  # non-sessions with bars and data gaps (simulated runs)
    universe = universe_filter(cfg, store)
    check_benchmark(cfg, store)
    worker = None
    if simulate:
        store.market.preload()  # one read of the bars; later reads use it behind the same guard
        if planner is None and local_training:
            # TensorFlow's import and tracing overlap the features below, in the training process
            worker = _start_training(cfg)
        u = cfg.universe
        days, calendar_notes = calendar_days(
            cfg.calendar, trading_period(cfg, store), store.market.preload(),
            symbols=set(u.symbols) if u.kind == "list" else None,
            sectors=set(u.sectors) if u.kind == "sector" else None,
        )  # fmt: skip
        if not universe(days[0]) and not universe(days[-1]):
            raise ConfigError(
                f"universe: no security is in the universe between {days[0]} and {days[-1]} "
                f"(kind {cfg.universe.kind!r}); check universe.symbols / universe.sectors"
            )
    warnings: list[str] = list(calendar_notes)
    if cfg.ml.active and cfg.ml.mode == "current":
        warnings.append(LOOKAHEAD_WARNING)
    survivors = cfg.universe.kind != "index" and not store.market.listed()[0]
    if survivors:
        warnings.append(SURVIVORSHIP_WARNING)
    if planner is None:
        planner = _domain_planner(cfg, store, settings, universe, warnings, models_dir, status,
                                  worker)  # fmt: skip
        if simulate and cfg.ml.walk_forward:
            store.signals.preload_samples()  # decoded once; every retrain's read is a filter
    decider = ScoredStrategy(planner, strategy or cfg.strategy.build(), universe)
    return Session(cfg, store, universe, planner, decider, warnings, days, survivors)


def _start_training(cfg: RunConfig) -> Any | None:
    """The process the run's networks train in (:mod:`sentinel.ml.nn_worker`), started now so
    that TensorFlow's import and the graph's tracing overlap the data load and the features.

    Why a process and not a thread: the run is bound by its own GIL on the 2-core target, and
    TensorFlow's import alone held it for ~5-6 s. If no process can be started, the networks
    train in this one (a thread imports TensorFlow and traces the graph meanwhile).
    """
    from sentinel.ml import nn_worker  # lazy: only runs that train import the ML stack
    from sentinel.ml.nn import NNRegressor
    from sentinel.ml.pooled import POOLED_BATCH, POOLED_LR

    pooled = cfg.ml.model == "pooled"
    nn = NNRegressor(batch_size=POOLED_BATCH, learning_rate=POOLED_LR) if pooled else NNRegressor()
    try:
        return nn_worker.start(len(cfg.ml.feature_names), nn, threads=1)  # XGBoost: other core
    except OSError:
        from sentinel.ml.batched import prewarm

        prewarm(len(cfg.ml.feature_names), nn, threads=1)
        return None


def _domain_planner(
    cfg: RunConfig,
    store: Store,
    settings: Settings,
    universe: Callable[[date], list[str]],
    warnings: list[str],
    models_dir: Path | None,
    status: Callable[[str], None],
    nn_worker: Any | None = None,
) -> Planner:
    book = predictor = None
    model_ids: dict[str, str] = {}
    if cfg.ml.active:
        status("computing features (causal, whole history once)")
        # all symbols: sector strength is relative to the whole store
        # the market features read the run's benchmark (checked to be stored), else SPY, ...
        book = FeatureBook(store, features=cfg.ml.feature_names, market=cfg.benchmark)
        ensure_samples(cfg, store, book, status)
    pooled_id = None
    if cfg.ml.active and cfg.ml.mode == "current" and cfg.ml.model != "per_symbol":
        predictor, pooled_id = current_pooled(models_dir or settings.models_dir, cfg)
    elif cfg.ml.active and cfg.ml.mode == "current":
        predictor, model_ids = current_models(models_dir or settings.models_dir,
                                              cfg.universe.symbols or None,
                                              cfg.ml.feature_names)  # fmt: skip
        if not predictor.symbols:
            _refuse_pooled_only(models_dir or settings.models_dir)
            warnings.append("ML mode 'current': no stored models, wavelet scores only")
            if not predictor.load_errors:  # keep it to name each symbol's load error
                predictor = None
    planner = Planner(
        ml_policy(cfg, settings), universe=universe, book=book, predictor=predictor,
        model_ids=model_ids,
        # a listed universe trains only its symbols (each network is independent of the others)
        train_symbols=cfg.universe.symbols if cfg.universe.kind == "list" else None,
        ml_flags={s.symbol: s.ml_enabled for s in store.market.securities()},
        train_map=train_mapper(cfg.ml.train_executor) if cfg.ml.walk_forward else None,
        nn_worker=nn_worker,
    )  # fmt: skip
    if pooled_id is not None:
        planner.model_id = pooled_id
    return planner


def current_pooled(models_dir: Path, cfg: RunConfig) -> tuple[Any, str]:
    """The stored pooled predictor (``ml.mode: current``, ``ml.model`` pooled / hierarchical)
    and its model id; a store without one, or with another kind, target or features, is a
    :class:`ConfigError` naming the key (never a silent per-symbol fallback)."""
    from sentinel.ml.errors import MLError  # lazy: see current_models
    from sentinel.ml.model_files import ModelStore

    ms = ModelStore(models_dir)
    if not ms.has_pooled():
        have = "per-symbol models only" if ms.symbols() else "no model"
        raise ConfigError(
            f"ml.model: {cfg.ml.model} in ml.mode current needs a stored pooled model, but "
            f"{models_dir} holds {have} (sentinel ml train --model {cfg.ml.model})"
        )
    try:
        stored = ms.load_pooled(cfg.ml.model, cfg.ml.target)
    except MLError as exc:
        raise ConfigError(f"ml.model: {exc}") from None
    problem = feature_mismatch(stored.metadata.get("features"), cfg.ml.feature_names)
    if problem:
        raise ConfigError(f"ml.features: the stored pooled model: {problem}")
    return stored.predictor, f"current:{cfg.ml.model}:{stored.folder.name}"


def _refuse_pooled_only(models_dir: Path) -> None:
    """ml.model per_symbol in current mode where the folder holds only a pooled model."""
    from sentinel.ml.model_files import ModelStore  # lazy: see current_models

    ms = ModelStore(models_dir)
    if ms.has_pooled() and not ms.symbols():
        kind = ms.verify_pooled().metadata or {}
        raise ConfigError(
            f"ml.model: per_symbol, but {models_dir} holds only a pooled model (kind "
            f"{kind.get('kind', '?')}); set ml.model to it or run sentinel ml train --model "
            "per_symbol"
        )
