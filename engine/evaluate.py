"""``sentinel ml evaluate``: how well each score ranked the universe on each rebalance day.

The walk-forward backtest path (:func:`engine.backtest.run_backtest`) logs, per rebalance day,
every symbol's scores (the ML predicted return and score, the wavelet score, the blend at the
run's ratio). This module adds the baselines of :mod:`sentinel.ml.baselines` for the same
symbols and days (rules from the day's features; the ridge refitted on each retrain day on the
samples known that day, like the models) and joins the forward return over the horizon:
close on the last trading day on or before ``day + horizon`` over the close on ``day`` (the
training label's definition). The closes are read through ``store.view(end)`` for the run's
last day ``end``: a day whose horizon ends after ``end`` is "not yet known" and enters no
figure, and a bar after ``end`` cannot be read at all (:class:`LookAheadError`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import RunConfig
from sentinel.db import Store
from sentinel.ml.baselines import BASELINES, fit_ridge, ridge_weights, rule_predictions
from sentinel.ml.evaluation import RETURN, Evaluation, EvaluationError, evaluate

#: The run's own scores, as the planner logs them (predictions.csv).
RUN_SCORES = ("predicted_return", "ml_score", "wavelet_score", "blended_score")
#: Every score evaluated, in display order.
SCORES = (*RUN_SCORES, *BASELINES)
#: Files an evaluation writes.
EVAL_FILES = ("ml_eval.json", "ml_eval.csv")


@dataclass
class RunEvaluation:
    """An evaluation with the joined frame (for the report's diagnostics) and its context."""

    evaluation: Evaluation
    frame: pd.DataFrame
    config: RunConfig
    end: date
    retrains: list[date] = field(default_factory=list)
    fallbacks: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = self.evaluation.to_json()
        ml = self.config.ml
        out.update(
            run=self.config.name, config_hash=self.config.config_hash(), as_of=str(self.end),
            blend_ratio=ml.blend_ratio, retrain=ml.retrain, fallbacks=self.fallbacks,
        )  # fmt: skip
        return out


def check_evaluable(cfg: RunConfig, days: list[date], n_symbols: int) -> None:
    """Refuse, before minutes of work, what cannot be evaluated (one line each)."""
    if not cfg.ml.active:
        raise EvaluationError(
            "ml evaluate needs a run that uses ML: this config has ML off "
            f"(ml.enabled {cfg.ml.enabled}, ml.mode {cfg.ml.mode!r})"
        )
    if cfg.ml.mode != "walk_forward":
        raise EvaluationError(
            f"ml evaluate needs ml.mode walk_forward (got {cfg.ml.mode!r}): stored models were "
            "trained on the period being evaluated"
        )
    horizon = int(cfg.ml.horizon_days or 0)
    if days and (days[-1] - days[0]).days <= horizon:
        raise EvaluationError(
            f"ml.horizon_days {horizon} is not shorter than the period {days[0]} .. {days[-1]}: "
            "no forward return would be known"
        )
    if n_symbols < 2:
        raise EvaluationError(
            f"a cross-sectional evaluation needs at least 2 symbols; the universe has {n_symbols}"
        )


def forward_returns(store: Store, keys: pd.DataFrame, horizon_days: int, end: date) -> pd.Series:
    """Forward return per row of ``keys`` (``date``, ``symbol``), NaN unless known by ``end``.

    Known means ``date + horizon <= end`` and the symbol has a bar after ``date`` by then (a
    name that stopped trading has no return, not a zero one).
    """
    view = store.view(end)
    symbols = sorted(keys["symbol"].unique())
    closes = view.market.get_close_panel(symbols, end_date=end)
    closes.index = pd.to_datetime(closes.index)
    out = returns_from_closes(closes, keys, horizon_days, end)
    return pd.Series(out, index=keys.index, name=RETURN)


def returns_from_closes(
    closes: pd.DataFrame, keys: pd.DataFrame, horizon_days: int, end: date
) -> np.ndarray:
    """:func:`forward_returns` from a date x symbol close panel, one array operation per symbol.

    Per row: the close on the row's date (it must be a bar) and the last close on or before
    ``date + horizon``, if that is a later bar and ``date + horizon <= end``; else NaN.
    """
    out = np.full(len(keys), np.nan)
    h = np.timedelta64(int(horizon_days), "D")
    limit = pd.Timestamp(end).to_datetime64()
    days = pd.to_datetime(keys["date"]).to_numpy(dtype="datetime64[ns]")
    index = pd.DatetimeIndex(closes.index).to_numpy(dtype="datetime64[ns]")
    for sym, idx in keys.groupby("symbol").indices.items():
        if sym not in closes:
            continue
        column = closes[sym].to_numpy()
        have = ~pd.isna(column)
        when, values = index[have], column[have]
        t = days[idx]
        a = when.searchsorted(t, side="right") - 1
        b = when.searchsorted(t + h, side="right") - 1
        ok = (t + h <= limit) & (a >= 0) & (b > a)
        ok[ok] = when[a[ok]] == t[ok]
        out[idx[ok]] = values[b[ok]] / values[a[ok]] - 1.0
    return out


#: ``read(day, horizon_days)``: the training samples known on ``day``, through ``store.view(day)``.
SampleReader = Callable[[date, int], pd.DataFrame]


def sample_reader(store: Store) -> SampleReader:
    """A :data:`SampleReader` that reads each (day, horizon) once: the report's ridge baselines
    and the network's permutation importance both need the last retrain's samples."""
    cache: dict[tuple[date, int], pd.DataFrame] = {}

    def read(day: date, horizon_days: int) -> pd.DataFrame:
        key = (day, int(horizon_days))
        if key not in cache:
            view = store.view(day)
            cache[key] = view.signals.get_training_samples(known_by=day, horizon_days=key[1])
        return cache[key]

    return read


def _ridges(samples: pd.DataFrame, day: date, symbols: set[str], min_samples: int):
    """Per-symbol ridge baselines on the samples whose labels were known on ``day``.

    ``samples`` were read through the view of a retrain day on or after ``day``; keeping the
    rows with ``label_known_at <= day`` gives the rows, in the order, that ``store.view(day)``
    returns (the repository's filter), without one read per retrain.
    """
    known = samples[(samples["label_known_at"] <= pd.Timestamp(day)).to_numpy()]
    fits = {}
    for sym, g in known[known["symbol"].isin(symbols)].groupby("symbol"):
        if len(g) >= min_samples:
            model = fit_ridge(np.array(g["features"].tolist()), g["label"].to_numpy())
            fits[str(sym)] = ridge_weights(model)
    return fits


def add_baselines(
    store: Store,
    scores: pd.DataFrame,
    book: Any,
    retrains: list[date],
    *,
    horizon_days: int,
    min_samples: int,
    read_samples: SampleReader | None = None,
) -> pd.DataFrame:
    """``scores`` with one column per baseline, computed from each day's features (as of it)."""
    read_samples = read_samples or sample_reader(store)
    out = scores.copy()
    values = {name: np.full(len(out), np.nan) for name in BASELINES}
    retrains = sorted(retrains)
    ridge_day, ridges = None, {}
    all_symbols = out["symbol"].to_numpy()
    symbols = set(all_symbols)
    samples = None  # the training samples known on the last retrain used, read once
    last_day = pd.Timestamp(out["date"].max()).date() if len(out) else None
    latest = max((r for r in retrains if last_day is not None and r <= last_day), default=None)
    for day, idx in out.groupby("date").indices.items():
        d = pd.Timestamp(day).date()
        view = store.view(d)
        syms = list(all_symbols[idx])
        feats = book.panel_as_of(syms, view)
        if feats.empty:
            continue
        # positions of the day's rows with features, and their feature rows (a dict, not
        # ``feats.loc``: an Index built from the labels of each day cost more than the lookup)
        where = {s: i for i, s in enumerate(feats.index)}
        rows = idx[[s in where for s in syms]]
        X = feats.to_numpy(dtype="float64")[[where[s] for s in all_symbols[rows]]]
        for name, pred in rule_predictions(X, horizon_days).items():
            values[name][rows] = pred
        last = max((r for r in retrains if r <= d), default=None)
        if last is not None and last != ridge_day:
            if samples is None:
                samples = read_samples(latest, horizon_days)
            ridge_day, ridges = last, _ridges(samples, last, symbols, min_samples)
        fitted = [ridges.get(s) for s in all_symbols[rows]]
        have = np.array([f is not None for f in fitted])
        if have.any():
            W = np.array([f[0] for f in fitted if f is not None])
            b = np.array([f[1] for f in fitted if f is not None])
            n = W.shape[1]
            values["ridge"][rows[have]] = np.einsum("ij,ij->i", X[have][:, :n], W) + b
    for name in BASELINES:
        out[name] = values[name]
    return out


def fallback_counts(predictions: pd.DataFrame) -> dict[str, int]:
    """How often a symbol-day was scored without its ML prediction, by reason."""
    if "fallback" not in predictions:
        return {}
    reasons = predictions["fallback"].dropna().astype(str)
    reasons = reasons.str.replace(r"^model load error: .*", "model load error", regex=True)
    return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}


def evaluate_predictions(
    store: Store,
    cfg: RunConfig,
    predictions: pd.DataFrame,
    retrains: list[date],
    end: date,
    *,
    book: Any = None,
    n_quantiles: int = 5,
    read_samples: SampleReader | None = None,
) -> RunEvaluation:
    """Cross-sectional figures of a run's logged scores and the baselines, as of ``end``."""
    if predictions.empty:
        raise EvaluationError("the run logged no scores (no rebalance day scored the universe)")
    if book is None:
        from sentinel.ml.dataset import FeatureBook

        book = FeatureBook(store, sorted(predictions["symbol"].unique()))
    frame = predictions[["date", "symbol", *[c for c in RUN_SCORES if c in predictions]]].copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame = frame.reset_index(drop=True)
    horizon = int(cfg.ml.horizon_days or 14)
    frame = add_baselines(store, frame, book, retrains, horizon_days=horizon,
                          min_samples=int(cfg.ml.min_samples or 1),
                          read_samples=read_samples)  # fmt: skip
    frame[RETURN] = forward_returns(store, frame[["date", "symbol"]], horizon, end)
    scores = [s for s in SCORES if s in frame]
    ev = evaluate(frame, scores, horizon_days=horizon, n_quantiles=n_quantiles)
    return RunEvaluation(ev, frame, cfg, end, sorted(retrains), fallback_counts(predictions))


def evaluate_run(
    cfg: RunConfig,
    *,
    store: Store | None = None,
    status: Callable[[str], None] = lambda msg: None,
    n_quantiles: int = 5,
) -> RunEvaluation:
    """Run the config's walk-forward backtest (no outputs, no stored row) and evaluate it."""
    from engine.backtest import run_backtest
    from engine.session import (
        open_run_store,
        resolve_config,
        run_settings,
        trading_period,
        universe_filter,
    )

    store = store or open_run_store(cfg)
    resolved = resolve_config(cfg, run_settings(store))
    days = trading_period(resolved, store)
    universe = universe_filter(resolved, store)
    names = set(universe(days[0])) | set(universe(days[-1]))
    check_evaluable(resolved, days, len(names))
    result = run_backtest(cfg, store=store, save=False, write_report=False, status=status)
    status("evaluating scores against realised returns")
    return evaluate_predictions(
        store, result.config, result.predictions, result.log.retrains, days[-1],
        n_quantiles=n_quantiles,
    )  # fmt: skip


def write_evaluation(folder: str | Path, run_eval: RunEvaluation) -> dict[str, Path]:
    """ml_eval.json and ml_eval.csv into ``folder`` (created), each written whole then renamed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in EVAL_FILES}
    payload = json.dumps(run_eval.to_json(), indent=2, allow_nan=False) + "\n"
    table = run_eval.evaluation.per_day.assign(
        date=run_eval.evaluation.per_day["date"].dt.strftime("%Y-%m-%d")
    )
    for name, write in (
        ("ml_eval.json", lambda p: p.write_text(payload, encoding="utf-8")),
        ("ml_eval.csv", lambda p: table.to_csv(p, index=False)),
    ):
        tmp = paths[name].with_suffix(paths[name].suffix + ".tmp")
        write(tmp)
        tmp.replace(paths[name])
    return paths


def summary_rows(run_eval: RunEvaluation) -> list[dict[str, Any]]:
    """One row per score: the figures the CLI table and the report show."""
    rows = []
    for name, s in run_eval.evaluation.summary.items():
        rows.append({"score": name, **{k: v for k, v in s.items() if k != "quantile_mean_returns"}})
    return rows


def fmt(v: Any, digits: int = 3) -> str:
    """A figure for a table: ``n/a`` when undefined."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


class ImportanceLog:
    """The planner's ``on_retrain`` hook: XGBoost gain per feature of the latest retrain.

    Gain (the mean loss reduction of the splits on a feature) is read from each symbol's booster
    and averaged over the symbols (a feature a booster never split on counts as 0), so the report
    can show what the trees used. Models without a booster (other kinds) are skipped.
    """

    def __init__(self) -> None:
        self.day: date | None = None
        self.n_models = 0
        self.gain: dict[str, float] = {}

    def __call__(self, day: date, report: Any) -> None:
        from sentinel.ml_features import FEATURE_NAMES

        totals: dict[str, float] = {}
        n = 0
        for model in (getattr(report, "models", None) or {}).values():
            booster = getattr(getattr(model, "xgb_", None), "booster_", None)
            if booster is None:
                continue
            n += 1
            for key, value in booster.get_score(importance_type="gain").items():
                i = int(key[1:]) if key[:1] == "f" and key[1:].isdigit() else None
                name = FEATURE_NAMES[i] if i is not None and i < len(FEATURE_NAMES) else key
                totals[name] = totals.get(name, 0.0) + float(value)
        if n:
            self.day, self.n_models = day, n
            self.gain = dict(sorted(((k, v / n) for k, v in totals.items()), key=lambda kv: -kv[1]))
