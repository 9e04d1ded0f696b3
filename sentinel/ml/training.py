"""Training per-symbol ensembles from stored samples, as of a date, in one batched pass.

Used three ways: the CLI / scripts (train and save every eligible symbol), the weekly job, and
walk-forward backtests (train in memory as of each retrain day from samples whose labels were known
that day; nothing is written to the model folder, so live models are never touched by a backtest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sentinel.db import ModelRecord, Store
from sentinel.ml.batched import train_many
from sentinel.ml.dataset import samples_to_arrays
from sentinel.ml.errors import MLError
from sentinel.ml.model_files import ModelStore
from sentinel.ml.nn import NNRegressor
from sentinel.ml_features import FEATURE_NAMES
from sentinel.symbols import SYMBOL_RULE, is_valid_symbol
from sentinel.timeutil import require_date

INVALID_SYMBOL = f"invalid symbol: it cannot name a model folder ({SYMBOL_RULE})"


@dataclass
class TrainReport:
    """What a training pass did: models per symbol, skipped and failed symbols with reasons."""

    as_of: date | None
    models: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The notes' ``POST /api/ml/retrain`` shape."""
        return {
            "status": "completed",
            "symbols_trained": len(self.models),
            "symbols_skipped": len(self.skipped) + len(self.failed),
            "results": {
                s: {
                    "validation_rmse": m.get("validation_rmse"),
                    "validation_r2": m.get("validation_r2"),
                }
                for s, m in self.metrics.items()
            },
            "skipped": {**self.skipped, **self.failed},
        }


def train_as_of(
    store: Store,
    *,
    as_of: date | None = None,
    symbols: Iterable[str] | None = None,
    horizon_days: int = 14,
    min_samples: int = 100,
    max_epochs: int = 100,
    validate: bool = True,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> TrainReport:
    """Fit ensembles for every symbol with at least ``min_samples`` samples known by ``as_of``.

    ``validate=True`` runs the purged validation and the shuffled-split leakage diagnostic and
    refits the final model on all known samples (what the stored models use); ``validate=False``
    keeps the model fitted on the purged training part and skips the diagnostic (walk-forward
    backtests: half the cost, metrics still honest).
    """
    d = require_date(as_of, "as_of") if as_of is not None else None
    symbols = list(symbols) if symbols is not None else None  # read twice below
    samples = store.signals.get_training_samples(known_by=d, horizon_days=horizon_days)
    if symbols is not None:
        wanted = set(symbols)
        samples = samples[samples["symbol"].isin(wanted)]
    report = TrainReport(d)
    data = samples_to_arrays(samples)
    if symbols is not None:
        for s in sorted(set(symbols) - set(data)):
            report.skipped[s] = "no training samples"
    eligible = {}
    for sym, (X, y, dates) in data.items():
        report.samples[sym] = len(y)
        if not is_valid_symbol(sym):  # e.g. imported before the rule: it fails alone
            report.failed[sym] = INVALID_SYMBOL
        elif len(y) < min_samples:
            report.skipped[sym] = f"{len(y)} samples < ml_min_samples_per_symbol {min_samples}"
        else:
            eligible[sym] = (X, y, dates)
    if not eligible:
        return report
    if progress:
        progress(f"training {len(eligible)} symbols in one batched pass")
    results = train_many(
        eligible,
        nn=NNRegressor(max_epochs=max_epochs, random_state=seed),
        horizon_days=horizon_days,
        leakage_diagnostic=validate,
        refit="all" if validate else "train",
        seed=seed,
    )
    for sym, res in results.items():
        if res.ok:
            report.models[sym] = res.model
            report.metrics[sym] = res.metrics or {}
        else:
            report.failed[sym] = res.error or "unknown error"
    return report


def save_models(store: Store, report: TrainReport, models_dir, *, horizon_days: int = 14) -> None:
    """Write each trained model atomically under ``models_dir`` and its record to the database.

    A model that cannot be saved (:class:`MLError`, e.g. a symbol that cannot be a folder) moves
    from ``report.models`` to ``report.failed`` with the reason; the others are still saved.
    """
    ms = ModelStore(models_dir)
    now = datetime.now(UTC)
    for sym, model in list(report.models.items()):
        metrics = report.metrics.get(sym, {})
        meta = {
            "features": list(FEATURE_NAMES),
            "metrics": metrics,
            "training_samples": report.samples.get(sym),
            "trained_at": now.isoformat(),
            "as_of": report.as_of.isoformat() if report.as_of else None,
            "horizon_days": horizon_days,
        }
        try:
            version = ms.save(sym, model, metadata=meta).name
        except MLError as exc:
            report.models.pop(sym)
            report.metrics.pop(sym, None)
            report.failed[sym] = f"not saved: {exc}"
            continue
        # the record strictly after the swap, naming the version installed: a kill between the
        # two leaves files newer than their record, which listings detect by the version and
        # show from the files (sentinel.ml.status.model_rows); never a record without files
        store.records.upsert_model_record(
            ModelRecord(
                symbol=sym,
                trained_at=now,
                # rows the stored model was fitted on (fewer than known with validate=False)
                training_samples=int(metrics.get("training_samples", report.samples.get(sym, 0))),
                train_end=report.as_of,
                version=version,
                metrics=metrics,
            )
        )
