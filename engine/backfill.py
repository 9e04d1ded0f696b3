"""Historical ``ml_predictions``: one row per symbol and date, as a backtest would have seen it.

The backfill is a run like any other: :func:`engine.session.build_session` builds the planner
from a run config (rebalance every N-th trading day, the walk-forward retrain cadence of the
backtests), and :class:`engine.runner.Runner` walks the days, handing the planner a store view
bound to each one. So every input is as of the row's date by construction, and the models are

* ``walk_forward`` (default): retrained in simulated time on the clock's cadence (``monthly`` by
  default, as ``configs/walk_forward.yaml``), each from the samples whose labels were known that
  day; rows carry ``model_id = "walk_forward:<retrain day>"``. Retrains are fitted when a day
  needs them, so a resumed run pays only for the retrain in force where it resumes.
* ``current``: the stored models (the design notes' behaviour). Those models were trained on the
  very future they "predict": rows are marked ``model_mode = "current"`` so reports can flag them.

Rows are buffered and committed every ``commit_every`` dates; existing (symbol, date) keys are
never rewritten and days with every key present are skipped, so the backfill is resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from engine.broker import SimulatedBroker
from engine.config import RunConfig
from engine.portfolio import Portfolio
from engine.session import ScoredStrategy, ScoresOnly, build_session
from sentinel.db import Store
from sentinel.ml.policy import WALK_FORWARD_MAX_EPOCHS
from sentinel.planner import prediction_rows

Mode = Literal["walk_forward", "current"]
Cadence = Literal["weekly", "monthly", "quarterly", "yearly"]
#: Longest fallback text the ``ml_predictions.fallback`` column holds.
_FALLBACK_LEN = 128


@dataclass
class BackfillReport:
    """What a backfill did: rows written, keys already there, retrains, per-symbol problems."""

    mode: str
    dates: int = 0
    rows_written: int = 0
    rows_existing: int = 0
    retrains: list[str] = field(default_factory=list)
    load_errors: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dates": self.dates,
            "rows_written": self.rows_written,
            "rows_existing": self.rows_existing,
            "retrains": len(self.retrains),
            "load_errors": self.load_errors,
            "fallbacks": self.fallbacks,
        }


def _in_universe(sec: Any, d: date) -> bool:
    return (
        sec.universe_from is not None
        and sec.universe_from <= d
        and (sec.universe_to is None or sec.universe_to >= d)
    )


class _Recorder(ScoredStrategy):
    """Scores the days still missing rows and writes the missing keys, committing in batches."""

    def __init__(self, base: ScoredStrategy, store: Store, todo: set[date],
                 existing: dict[str, set[date]], mode: str, report: BackfillReport,
                 commit_every: int, progress: Callable[[int, int, date], None] | None):  # fmt: skip
        super().__init__(base.planner, base.strategy, base.universe)
        self.store, self.todo, self.existing = store, todo, existing
        self.mode, self.report = mode, report
        self.commit_every = max(1, int(commit_every))
        self.progress = progress
        self.buffer: list[dict[str, Any]] = []
        self.pending = self.done = 0

    def plan(self, view: Store, current_weights: pd.Series) -> pd.Series:
        day = view.day
        if day not in self.todo:
            return pd.Series(dtype="float64")
        super().plan(view, current_weights)
        scores = self.scores_log.pop().drop(columns=["date"])
        self.score_days.pop()
        for r in prediction_rows(scores, day, self.mode):
            if day in self.existing.get(r["symbol"], ()):
                continue
            if r["fallback"]:
                r["fallback"] = str(r["fallback"])[:_FALLBACK_LEN]
                key = r["fallback"].split(":")[0]
                self.report.fallbacks[key] = self.report.fallbacks.get(key, 0) + 1
            self.buffer.append(r)
        self.pending += 1
        self.done += 1
        if self.pending >= self.commit_every or self.done == len(self.todo):
            self.flush()
        if self.progress:
            self.progress(self.done, len(self.todo), day)
        return pd.Series(dtype="float64")

    def flush(self) -> None:
        self.report.rows_written += self.store.signals.upsert_ml_predictions(self.buffer)
        self.buffer, self.pending = [], 0


def backfill_predictions(
    store: Store,
    *,
    start: date | None = None,
    end: date | None = None,
    every: int = 1,
    symbols: Iterable[str] | None = None,
    mode: Mode = "walk_forward",
    retrain: Cadence = "monthly",
    models_dir: str | Path | None = None,
    blend_ratio: float | None = None,
    ml_enabled: bool | None = None,
    horizon_days: int | None = None,
    min_samples: int | None = None,
    max_epochs: int = WALK_FORWARD_MAX_EPOCHS,
    seed: int = 0,
    commit_every: int = 20,
    progress: Callable[[int, int, date], None] | None = None,
) -> BackfillReport:
    """Write one ``ml_predictions`` row per symbol and date in range, skipping existing keys.

    Parameters
    ----------
    every
        Keep every N-th trading day of the range (1: every day).
    retrain
        Walk-forward cadence, as a run config's ``ml.retrain``.
    models_dir
        Folder of the stored models for ``mode="current"`` (default: the settings').
    blend_ratio, ml_enabled, horizon_days, min_samples
        Default to the effective settings (environment, then the values stored through the API).
    commit_every
        Dates buffered per write transaction: an interrupted run loses at most that many.
    """
    if mode not in ("walk_forward", "current"):
        raise ValueError(f"mode must be 'walk_forward' or 'current', not {mode!r}")
    report = BackfillReport(mode)
    full = store.view(None)
    span = full.market.price_span()
    if span is None:
        return report
    days = full.market.trading_days(start, end)[:: max(1, int(every))]
    secs = {s.symbol: s for s in full.market.securities()}
    wanted = sorted(secs) if symbols is None else sorted(set(symbols) & set(secs))
    if not days or not wanted:
        return report
    existing = {s: full.signals.existing_prediction_keys(s) for s in wanted}
    todo = {
        d for d in days if any(d not in existing[s] for s in wanted if _in_universe(secs[s], d))
    }
    report.dates = len(todo)
    report.rows_existing = sum(len({d for d in days if d in existing[s]}) for s in wanted)
    if not todo:
        return report

    cfg = RunConfig.model_validate({
        "name": "backfill", "start": days[0], "end": full.market.trading_days(start, end)[-1],
        "universe": {"kind": "list", "symbols": wanted} if symbols is not None else {},
        "rebalance": {"every": "days", "n_days": max(1, int(every))},
        "ml": {"enabled": ml_enabled, "blend_ratio": blend_ratio, "mode": mode,
               "retrain": retrain, "horizon_days": horizon_days, "min_samples": min_samples,
               "max_epochs": max_epochs},
        "seed": seed,
    })  # fmt: skip
    session = build_session(
        cfg, store, strategy=ScoresOnly(),
        models_dir=Path(models_dir) if models_dir is not None else None,
    )  # fmt: skip
    planner = session.planner
    predictor = getattr(planner, "predictor", None)
    report.load_errors = dict(getattr(predictor, "load_errors", {}) or {})
    planner.on_retrain = lambda d, rep: report.retrains.append(f"{d}: {len(rep.models)} models")
    recorder = _Recorder(session.decider, store, todo, existing, mode, report, commit_every,
                         progress)  # fmt: skip
    session.decider = recorder
    session.runner(broker=SimulatedBroker(cfg.costs), portfolio=Portfolio(cash=1.0)).run()
    if recorder.buffer:
        recorder.flush()
    return report
