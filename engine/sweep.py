"""Sweeps: a base run config, a grid over any key path (or named variants), run fast and honestly.

Shared work. Scores (wavelet, features, walk-forward models, predictions) do not depend on the
blend ratio or on the strategy's parameters. A sweep first computes them once per distinct
*score key* and stores them in a cache; each point then replays those scores, re-blends them with
its own ratio and runs only its strategy and the broker. The score key is a hash of the config
parts that produce scores (data, universe, the rebalance schedule, the ML mode/retrain/horizon/
min-samples/epochs/seed, and the span) plus a fingerprint of the store's data (row counts and last
dates of prices, benchmarks, training samples and sentiment); any change to either invalidates it.
A replayed point gives exactly what a standalone backtest of the same config gives (tested).

Honesty. A ratio chosen on the period it is scored on is in-sample. With ``selection`` and
``test`` periods, every point runs on both; the best point is picked on the selection period
only, and its test-period figures are the out-of-sample estimate the report leads with.

Executors: ``local`` (a process pool, default) or ``dask`` (a Dask distributed cluster given by
address, or a local one) — chosen because it is pip-installable with no daemons or object store,
starts a local cluster in seconds for tests, and scales out to a cluster with the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from engine.broker import SimulatedBroker
from engine.clock import Tick
from engine.config import RunConfig
from engine.portfolio import Portfolio
from engine.session import ScoresOnly, build_session
from engine.sweep_config import (  # the sweep config API (light: read before the engine)
    MAX_GRID_KEYS,
    MAX_SWEEP_POINTS,
    ExecutorConfig,
    Period,
    Point,
    SweepConfig,
    Variant,
    expand,
    load_sweep,
)
from sentinel.db import Store
from sentinel.errors import ConfigError
from sentinel.ml.blend import blend_scores
from sentinel.planner import LOOKBACK_DAYS, SCORE_COLUMNS

__all__ = [
    "MAX_GRID_KEYS", "MAX_SWEEP_POINTS", "ExecutorConfig", "Period", "Point", "ReplayPlanner",
    "SweepConfig", "Variant", "cached_scores", "compute_scores", "expand", "load_sweep",
    "score_key", "store_fingerprint",
]  # fmt: skip

# -- the score cache ---------------------------------------------------------------------------
SCORE_FIELDS = ("data", "universe", "rebalance", "seed")
#: ml keys that do not change the scores: the ratio is applied on replay, and where training
#: runs gives the same models. Every other ml key is part of the score key: a key missing here
#: once made a grid over ml.model replay one kind's scores for every kind.
ML_REPLAYED = ("blend_ratio", "train_executor")


def store_fingerprint(store: Store) -> dict[str, Any]:
    """Counts and last dates of the tables scores are computed from."""
    return store.db.data_fingerprint()


def score_key(cfg: RunConfig, start: date, end: date, fingerprint: dict[str, Any]) -> str:
    """Hash of what produces a run's scores (not the blend ratio, strategy or costs)."""
    dumped = cfg.model_dump(mode="json")
    parts = {k: dumped[k] for k in SCORE_FIELDS}
    parts["rebalance"] = {k: v for k, v in parts["rebalance"].items() if k != "min_trade_weight"}
    parts["ml"] = {k: v for k, v in dumped["ml"].items() if k not in ML_REPLAYED}
    parts["span"] = [str(start), str(end)]
    parts["store"] = fingerprint
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


NO_SYMBOL = ""  # marks a rebalance day whose score frame was empty


class ReplayPlanner:
    """A planner that replays cached scores and re-blends them with its own ratio."""

    needs_bars = False  # scores come from the cache; bars only if the strategy asks

    def __init__(self, scores: pd.DataFrame, blend_ratio: float):
        self.by_day = {d.date(): g.set_index("symbol") for d, g in scores.groupby("date")}
        self.ratio = blend_ratio

    def retrain(self, view: Store) -> None:  # models are baked into the cached predictions
        return None

    def history(self, view: Store, symbols: list[str]) -> pd.DataFrame:
        return view.market.get_price_panel(symbols, days=LOOKBACK_DAYS, end_date=view.day)

    def scores(self, view: Store, bars: pd.DataFrame | None = None) -> pd.DataFrame:
        s = self.by_day.get(view.day)
        if s is None:
            raise ConfigError(f"score cache has no scores for {view.day}: the cache key is stale")
        s = s.drop(columns=["date"], errors="ignore")
        s = s[s.index != NO_SYMBOL].copy()
        if s.empty:
            return pd.DataFrame(columns=SCORE_COLUMNS, index=pd.Index([], name="symbol"))
        s["blend_ratio"] = self.ratio
        s["blended_score"] = blend_scores(s["wavelet_score"], s["ml_score"], self.ratio)
        return s


def compute_scores(cfg: RunConfig, store: Store, status: Callable[[str], None]) -> pd.DataFrame:
    """The scores of every rebalance day of ``cfg`` (with its retrains), computed once.

    The session's runner walks the period with a strategy that holds nothing, so the scores are
    exactly those a backtest of ``cfg`` computes on the same days.
    """
    session = build_session(cfg, store, strategy=ScoresOnly(), status=status)
    broker = SimulatedBroker(session.cfg.costs)
    n, done, step = len(session.days), [0], max(1, len(session.days) // 20)

    def counted(tick: Tick) -> None:  # a count every 5 % of the days (the long part of a sweep)
        done[0] += 1
        if done[0] % step == 0 or done[0] == n:
            status(f"scores {cfg.start}..{cfg.end}: day {done[0]:,}/{n:,} ({done[0] / n:.0%})")

    portfolio = Portfolio(cash=session.cfg.initial_cash)
    session.runner(broker=broker, portfolio=portfolio, on_tick=counted).run()
    frames = []
    log = session.decider
    for day, scores in zip(log.score_days, log.scores_log, strict=True):
        if scores.empty:  # a day with nothing to score (e.g. too little history) still counts
            scores = pd.DataFrame({"date": [pd.Timestamp(day)]},
                                  index=pd.Index([NO_SYMBOL], name="symbol"))  # fmt: skip
        frames.append(scores)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames).reset_index()


def cached_scores(
    cfg: RunConfig, store: Store, cache_dir: Path, status: Callable[[str], None] = print
) -> tuple[pd.DataFrame, str, bool]:
    """Scores for ``cfg`` from the cache, computing and storing them on a miss."""
    key = score_key(cfg, cfg.start, cfg.end, store_fingerprint(store))
    path = cache_dir / f"scores-{key}.parquet"
    if path.exists():
        return pd.read_parquet(path), key, True
    scores = compute_scores(cfg, store, status)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    scores.to_parquet(tmp)
    os.replace(tmp, path)  # readers never see half a file
    return scores, key, False
