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
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.broker import SimulatedBroker
from engine.config import RunConfig, _format_errors, load_config, read_yaml
from engine.portfolio import Portfolio
from engine.session import ScoresOnly, build_session
from sentinel.db import Store
from sentinel.errors import ConfigError
from sentinel.ml.blend import blend_scores
from sentinel.planner import LOOKBACK_DAYS, SCORE_COLUMNS


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start: date
    end: date


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    set: dict[str, Any]


class ExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["local", "dask"] = "local"
    workers: int = Field(default=2, ge=1, le=256)
    address: str | None = Field(default=None, description="tcp://host:port of a Dask scheduler")


class SweepConfig(BaseModel):
    """``base`` (a run config mapping, or a path to one) plus ``grid`` and/or ``variants``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "sweep"
    base: RunConfig
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: tuple[Variant, ...] = ()
    selection: Period | None = None
    test: Period | None = None
    metric: str = "sharpe_ratio"
    executor: ExecutorConfig = ExecutorConfig()
    output: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if not self.grid and not self.variants:
            raise ValueError("a sweep needs a grid or variants")
        if (self.selection is None) != (self.test is None):
            raise ValueError("selection and test periods go together")
        if self.selection and self.test and self.test.start <= self.selection.end:
            raise ValueError("the test period must start after the selection period ends")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: a non-empty list of values")
        return self


@dataclass(frozen=True)
class Point:
    """One sweep point: its label, changes, the validated config, and the period it covers."""

    label: str
    changes: dict[str, Any]
    config: RunConfig
    period: str  # "full" | "selection" | "test"

    @property
    def key(self) -> str:
        return f"{self.period}-{self.config.config_hash()}"


def load_sweep(path: str | Path) -> SweepConfig:
    """Load a sweep file; ``base`` may be a mapping or the path of a run config."""
    path = Path(path)
    data, root = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a sweep config must be a mapping")
    if isinstance(data.get("base"), str):
        base_path = (path.parent / data["base"]).resolve()
        data["base"] = load_config(base_path).model_dump(mode="json")
    try:
        sweep = SweepConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path), root)) from None
    expand(sweep)  # every point is validated before anything runs
    return sweep


def _label(changes: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in changes.items())


def expand(sweep: SweepConfig) -> list[Point]:
    """Every point, validated like a run config (a bad key or value fails before any run)."""
    combos: list[tuple[str, dict[str, Any]]] = []
    if sweep.grid:
        keys = list(sweep.grid)
        for values in itertools.product(*(sweep.grid[k] for k in keys)):
            changes = dict(zip(keys, values, strict=True))
            combos.append((_label(changes), changes))
    for v in sweep.variants:
        combos.append((v.name, dict(v.set)))
    periods: list[tuple[str, dict[str, Any]]] = [("full", {})]
    if sweep.selection and sweep.test:
        periods = [
            ("selection", {"start": sweep.selection.start, "end": sweep.selection.end}),
            ("test", {"start": sweep.test.start, "end": sweep.test.end}),
        ]
    points = []
    for label, changes in combos:
        for period, span in periods:
            try:
                cfg = sweep.base.with_updates({**changes, **span})
            except ConfigError as exc:
                raise ConfigError(f"sweep point [{label}]: {exc}") from None
            points.append(Point(label, changes, cfg, period))
    return points


# -- the score cache ---------------------------------------------------------------------------
SCORE_FIELDS = ("data", "universe", "rebalance", "seed")
ML_FIELDS = ("enabled", "mode", "retrain", "horizon_days", "min_samples", "max_epochs")


def store_fingerprint(store: Store) -> dict[str, Any]:
    """Counts and last dates of the tables scores are computed from."""
    return store.db.data_fingerprint()


def score_key(cfg: RunConfig, start: date, end: date, fingerprint: dict[str, Any]) -> str:
    """Hash of what produces a run's scores (not the blend ratio, strategy or costs)."""
    dumped = cfg.model_dump(mode="json")
    parts = {k: dumped[k] for k in SCORE_FIELDS}
    parts["rebalance"] = {k: v for k, v in parts["rebalance"].items() if k != "min_trade_weight"}
    parts["ml"] = {k: dumped["ml"][k] for k in ML_FIELDS}
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
    session.runner(broker=broker, portfolio=Portfolio(cash=session.cfg.initial_cash)).run()
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
