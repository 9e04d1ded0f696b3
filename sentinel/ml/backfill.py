"""Historical ``ml_predictions``: one row per symbol and date, as a backtest would have seen it.

Every input is as of the row's date: features from :class:`~sentinel.ml.dataset.FeatureBook`
(causal rows), the wavelet score from :func:`~sentinel.wavelet.wavelet_history` (each date from
its own trailing window), the quote-based regime from the bars up to the date. The model is

* ``walk_forward`` (default): retrained on a fixed calendar grid (every ``retrain_days`` from the
  first date) on a simulation view of the store, i.e. only samples whose labels were known on the
  grid date; rows carry ``model_id = "walk_forward:<grid date>"``. The grid is anchored to the
  range, not to where a run resumes, so a resumed run writes the same rows as an uninterrupted one.
* ``current``: the stored models (the design notes' behaviour). Those models were trained on the
  very future they "predict": rows are marked ``model_mode = "current"`` so reports can flag them.

Scores are built by :meth:`RebalanceEngine.predict_and_blend` (the planner's logic) and written with
:func:`~sentinel.planner.prediction_rows`; rows are buffered and committed every ``commit_every``
dates. Existing (symbol, date) keys are skipped, so the backfill is resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from sentinel.db import ScoreRecord, Store
from sentinel.ml.errors import load_problem
from sentinel.timeutil import DateLike, end_of_day_ts

Mode = Literal["walk_forward", "current"]
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


def _wavelet_tables(book: Any, symbols: Iterable[str]) -> dict[str, pd.DataFrame]:
    """Per symbol, the causal wavelet score as of every date (valid rows only)."""
    from sentinel.wavelet import wavelet_history

    out = {}
    for s in symbols:
        h = wavelet_history(book.prices(s)["close"])
        out[s] = h[h["valid"]]
    return out


def _wavelet_as_of(tables: dict[str, pd.DataFrame], syms: list[str], d: date) -> dict:
    ts, when = end_of_day_ts(d), pd.Timestamp(d)
    out = {}
    for s in syms:
        h = tables.get(s)
        if h is None or h.empty:
            continue
        i = h.index.searchsorted(when, side="right") - 1
        if i < 0:
            continue
        row = h.iloc[i]
        comps = {"wavelet_d1": float(row["d1"]), "wavelet_d4": float(row["d4"])}
        out[s] = ScoreRecord(s, h.index[i].date(), ts, float(row["score"]), comps)
    return out


def _quotes(book: Any, syms: list[str], d: date, lookback: int) -> dict[str, dict[str, Any]]:
    """Quote data from the last ``lookback`` bars up to ``d`` (what the planner reads)."""
    from sentinel.regime import quote_data_from_prices

    when = pd.Timestamp(d)
    out = {}
    for s in syms:
        p = book.prices(s)
        end = p.index.searchsorted(when, side="right")
        if end > 0:
            out[s] = quote_data_from_prices(p.iloc[max(0, end - lookback) : end])
    return out


class _WalkForward:
    """Models retrained on a calendar grid anchored at the first date, trained lazily."""

    def __init__(self, store: Store, first: date, every_days: int, train: dict[str, Any]):
        self.store, self.first, self.every = store, first, max(1, int(every_days))
        self.train = train
        self.anchor: date | None = None
        self.predictor: Any = None
        self.reports: list[Any] = []

    def anchor_for(self, d: date) -> date:
        k = (d - self.first).days // self.every
        return self.first + timedelta(days=k * self.every)

    def models_for(self, d: date) -> tuple[Any, str]:
        a = self.anchor_for(d)
        if a != self.anchor:
            from sentinel.ml.predictor import Predictor
            from sentinel.ml.training import train_as_of

            # The view makes any read of samples known after the anchor a LookAheadError.
            report = train_as_of(self.store.view(a), as_of=a, validate=False, **self.train)
            pred = Predictor()
            for sym, model in report.models.items():
                pred.add(sym, model)
            self.predictor = pred if report.models else None
            self.anchor = a
            self.reports.append(report)
        return self.predictor, f"walk_forward:{a.isoformat()}"


def _current_models(models_dir: Path, symbols: list[str]) -> tuple[Any, dict[str, str]]:
    """Predictor over the stored models, and each symbol's model id (``current:<version>``)."""
    from sentinel.ml.predictor import Predictor
    from sentinel.ml.store import ModelStore

    ms = ModelStore(models_dir)
    pred = Predictor(ms)
    pred.load([s for s in symbols if (models_dir / s).exists() or (models_dir / s).is_symlink()])
    ids = {s: f"current:{(models_dir / s).resolve().name}" for s in pred.symbols}
    return pred, ids


def backfill_predictions(
    store: Store,
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    every: int = 1,
    symbols: Iterable[str] | None = None,
    mode: Mode = "walk_forward",
    retrain_days: int = 28,
    models_dir: str | Path | None = None,
    blend_ratio: float | None = None,
    ml_enabled: bool | None = None,
    horizon_days: int | None = None,
    min_samples: int | None = None,
    max_epochs: int = 60,
    seed: int = 0,
    commit_every: int = 20,
    book: Any = None,
    progress: Callable[[int, int, date], None] | None = None,
) -> BackfillReport:
    """Write one ``ml_predictions`` row per symbol and date in range, skipping existing keys.

    Parameters
    ----------
    every
        Keep every N-th trading day of the range (1: every day).
    retrain_days
        Walk-forward cadence in calendar days (28: about monthly).
    models_dir
        Folder of the stored models for ``mode="current"`` (default: the settings').
    blend_ratio, ml_enabled, horizon_days, min_samples
        Default to the effective settings (environment, then the values stored through the API).
    commit_every
        Dates buffered per write transaction: an interrupted run loses at most that many.
    """
    from sentinel.ml.dataset import FeatureBook, generate_samples
    from sentinel.planner import LOOKBACK_DAYS, RebalanceEngine, prediction_rows
    from sentinel.settings import effective_settings

    if mode not in ("walk_forward", "current"):
        raise ValueError(f"mode must be 'walk_forward' or 'current', not {mode!r}")
    settings = effective_settings(store.get_stored_settings())
    ratio = settings.ml_wavelet_blend_ratio if blend_ratio is None else blend_ratio
    enabled = settings.ml_enabled if ml_enabled is None else ml_enabled
    horizon = settings.ml_prediction_horizon_days if horizon_days is None else horizon_days
    min_n = settings.ml_min_samples_per_symbol if min_samples is None else min_samples

    full = store.view(None)
    days = full.trading_days(start, end)[:: max(1, int(every))]
    secs = {s.symbol: s for s in full.securities()}
    wanted = sorted(secs) if symbols is None else sorted(set(symbols) & set(secs))
    report = BackfillReport(mode)
    if not days or not wanted:
        return report
    existing = {s: full.existing_prediction_keys(s) for s in wanted}
    todo = [
        d for d in days if any(d not in existing[s] for s in wanted if _in_universe(secs[s], d))
    ]
    report.dates = len(todo)
    report.rows_existing = sum(len({d for d in days if d in existing[s]}) for s in wanted)
    if not todo:
        return report

    book = book or FeatureBook(full, wanted)
    wavelets = _wavelet_tables(book, [s for s in wanted if s in book.symbols])
    engine = RebalanceEngine(store)
    wf: _WalkForward | None = None
    ids: dict[str, str] = {}
    predictor: Any = None
    if enabled and mode == "walk_forward":
        if full.count("training_samples") == 0:
            generate_samples(full, horizon_days=horizon, book=book)
        train = {"horizon_days": horizon, "min_samples": min_n, "max_epochs": max_epochs,
                 "seed": seed, "symbols": wanted}  # fmt: skip
        wf = _WalkForward(store, days[0], retrain_days, train)
    elif enabled:
        from sentinel.settings import get_settings

        root = Path(models_dir) if models_dir is not None else get_settings().models_dir
        predictor, ids = _current_models(root, wanted)
        report.load_errors = dict(predictor.load_errors)
        if not predictor.symbols:
            predictor = None

    buffer: list[dict[str, Any]] = []
    pending = 0
    for n, d in enumerate(todo, 1):
        syms = [s for s in wanted if _in_universe(secs[s], d) and d not in existing[s]]
        wav = _wavelet_as_of(wavelets, syms, d)
        if wav:
            book.bound = full.view(d)  # any feature read past d raises LookAheadError
            model_id = None
            if wf is not None:
                predictor, model_id = wf.models_for(d)
            features = book.panel_as_of(list(wav), d)
            scores = engine.predict_and_blend(
                d, wav, features, predictor, blend_ratio=ratio, ml_enabled=enabled,
                quotes=_quotes(book, list(wav), d, LOOKBACK_DAYS), model_id=model_id,
                model_mode=mode, ml_allowed=lambda s: bool(secs[s].ml_enabled),
            )  # fmt: skip
            rows = prediction_rows(scores, d, mode)
            for r in rows:
                sym = r["symbol"]
                if r["predicted_return"] is not None and r["model_id"] is None and sym in ids:
                    r["model_id"] = ids[sym]
                if sym in report.load_errors and r["fallback"] == "no model":
                    r["fallback"] = f"model load error: {load_problem(report.load_errors[sym])}"
                if r["fallback"]:
                    r["fallback"] = str(r["fallback"])[:_FALLBACK_LEN]
                    key = str(r["fallback"]).split(":")[0]
                    report.fallbacks[key] = report.fallbacks.get(key, 0) + 1
            buffer.extend(rows)
        pending += 1
        if pending >= commit_every or n == len(todo):
            report.rows_written += store.upsert_ml_predictions(buffer)
            buffer, pending = [], 0
        if progress:
            progress(n, len(todo), d)
    if wf is not None:
        report.retrains = [f"{r.as_of}: {len(r.models)} models" for r in wf.reports]
    return report
