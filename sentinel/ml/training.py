"""Training per-symbol ensembles from stored samples, as of a date, in one batched pass.

Used three ways: the CLI / scripts (train and save every eligible symbol), the weekly job, and
walk-forward backtests (train in memory as of each retrain day from samples whose labels were known
that day; nothing is written to the model folder, so live models are never touched by a backtest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol

from sentinel.db import ModelRecord, Store
from sentinel.ml.batched import train_many
from sentinel.ml.dataset import relabel_from_next_open, samples_to_arrays
from sentinel.ml.errors import MLError
from sentinel.ml.model_files import ModelStore
from sentinel.ml.nn import NNRegressor
from sentinel.ml.pooled import MODEL_KINDS, POOLED, train_pooled, transform_target
from sentinel.ml_features import FEATURE_NAMES
from sentinel.symbols import SYMBOL_RULE, is_valid_symbol
from sentinel.timeutil import require_date

INVALID_SYMBOL = f"invalid symbol: it cannot name a model folder ({SYMBOL_RULE})"


class ChunkMapper(Protocol):
    """Runs ``fn`` on each chunk, possibly in other processes (``ml.train_executor``).

    ``workers`` is how many chunks to cut; the call returns ``fn(chunk)`` per chunk, in order.
    ``engine.train_executor`` implements it over Dask; the domain never imports Dask.
    """

    workers: int

    def __call__(self, fn: Callable[[Any], Any], chunks: list[Any]) -> list[Any]: ...


@dataclass
class TrainReport:
    """What a training pass did: models per symbol, skipped and failed symbols with reasons."""

    as_of: date | None
    models: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    #: The input columns the models were trained on (recorded in each saved model's metadata).
    features: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    #: ``ml.model`` pooled / hierarchical: one predictor for the whole universe (in memory only)
    predictor: Any = None
    #: per-symbol models whose counts were picked in this pass: symbol -> (epochs, trees)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

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
    book: Any | None = None,
    model: str = "per_symbol",
    target: str = "return",
    label_from: str = "close",
    epoch_progress: Callable[[int, int], None] | None = None,
    map_chunks: ChunkMapper | None = None,
    metrics: bool = True,
    counts: Mapping[str, tuple[int, int]] | None = None,
    for_prediction: bool = False,
    warm: Mapping[str, Any] | None = None,
    warm_share: float = 0.0,
) -> TrainReport:
    """Fit ensembles for every symbol with at least ``min_samples`` samples known by ``as_of``.

    Every model uses every label known on ``as_of``: the network's epoch count and the
    booster's tree count are picked by early stopping on a purged inner split (the oldest rows,
    purged before the validation block and before the early-stopping slice), then the ensemble
    is refitted on all known samples with exactly those counts. ``validate=True`` adds the
    shuffled-split leakage diagnostic (one more fit per symbol); walk-forward backtests skip
    it. ``book``: a :class:`~sentinel.ml.dataset.FeatureBook` whose ``feature_names``
    replace the stored 20 (``ml.features``); the book reads each sample's row through
    ``store``, never past its day. ``model`` and ``target`` are the run's ``ml.model`` and
    ``ml.target`` (:mod:`sentinel.ml.pooled`): cross-sectional targets are taken over the
    symbols trained (the run's universe), per sample date. ``label_from="next_open"`` measures
    each label from the next bar's open (:func:`~sentinel.ml.dataset.relabel_from_next_open`).
    ``epoch_progress``: the batched pass's ``(done, total)`` epoch steps (per-symbol models).
    ``map_chunks``: per-symbol models are cut into ``map_chunks.workers`` chunks, each trained
    by its own batched pass through the mapper (e.g. on Dask workers); a symbol's network does
    not depend on which symbols share its stack, so the models are the same (to float32
    rounding). ``epoch_progress`` is not reported then (the passes run elsewhere).
    ``metrics=False`` skips the purged-validation report (a walk-forward run reads only the
    models). ``counts``: per-symbol ``(epochs, trees)`` picked at an earlier retrain
    (``ml.select_every``): those symbols skip the early-stopping fit and are refitted on every
    known sample with these counts; the others are picked now (``report.counts``). Pooled and
    hierarchical kinds always pick. ``for_prediction``: the models will score rows in this
    process (walk-forward): their boosters are flattened for batched prediction in the
    booster worker, beside the network's training, not later on the main thread.
    ``warm``, ``warm_share``: ``ml.warm_start`` (:func:`~sentinel.ml.batched.train_many`): the
    previous retrain's networks, by symbol, that refits with given ``counts`` start from.
    """
    if model not in MODEL_KINDS:
        raise MLError(f"unknown ml.model {model!r}; choose one of {', '.join(MODEL_KINDS)}")
    d = require_date(as_of, "as_of") if as_of is not None else None
    symbols = list(symbols) if symbols is not None else None  # read twice below
    samples = store.signals.get_training_samples(known_by=d, horizon_days=horizon_days)
    if symbols is not None:
        wanted = set(symbols)
        samples = samples[samples["symbol"].isin(wanted)]
    report = TrainReport(d)
    if book is not None:  # a FeatureBook with the run's features (ml.features)
        samples = book.with_book_features(samples, store)
        report.features = list(book.feature_names)
    if label_from not in ("close", "next_open"):
        raise MLError(f"unknown ml.label_from {label_from!r}; choose close or next_open")
    if label_from == "next_open" and len(samples):
        panel = store.market.get_price_panel(sorted(samples["symbol"].unique()), end_date=d)
        samples = relabel_from_next_open(samples, panel)
    if target != "return" and len(samples):
        samples = samples.assign(label=transform_target(samples["label"], samples["date"], target))
    data = samples_to_arrays(samples)
    del samples  # the frame holds each row's features as Python lists: ~200 MB at 500 symbols
    if symbols is not None:
        for s in sorted(set(symbols) - set(data)):
            report.skipped[s] = "no training samples"
    eligible = {}
    for sym, (X, y, dates) in data.items():
        report.samples[sym] = len(y)
        if not is_valid_symbol(sym):  # e.g. imported before the rule: it fails alone
            report.failed[sym] = INVALID_SYMBOL
        elif model != "per_symbol":
            eligible[sym] = (X, y, dates)  # the pool takes every symbol's samples
        elif len(y) < min_samples:
            report.skipped[sym] = f"{len(y)} samples < ml_min_samples_per_symbol {min_samples}"
        else:
            eligible[sym] = (X, y, dates)
    if model != "per_symbol":
        return _train_pooled(report, eligible, model, horizon_days, min_samples, max_epochs,
                             seed, validate, target)  # fmt: skip
    if not eligible:
        return report
    if progress:
        progress(f"training {len(eligible)} symbols in one batched pass")
    if map_chunks is None:
        results = _train_chunk(eligible, max_epochs=max_epochs, horizon_days=horizon_days,
                               validate=validate, seed=seed, progress=epoch_progress,
                               metrics=metrics, counts=counts,
                               for_prediction=for_prediction, warm=warm,
                               warm_share=warm_share)  # fmt: skip
    else:
        fit = partial(_train_chunk, max_epochs=max_epochs, horizon_days=horizon_days,
                      validate=validate, seed=seed, metrics=metrics, counts=counts,
                      for_prediction=for_prediction, warm=warm,
                      warm_share=warm_share)  # fmt: skip
        results = {}
        for part in map_chunks(fit, _chunks(eligible, map_chunks.workers)):
            results.update(part)
    for sym, res in results.items():
        if res.ok:
            report.models[sym] = res.model
            if res.metrics is not None:
                report.metrics[sym] = res.metrics
            if res.counts is not None:
                report.counts[sym] = res.counts
        else:
            report.failed[sym] = res.error or "unknown error"
    return report


def _chunks(data: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """``data`` cut into at most ``n`` contiguous chunks of near-equal size (input order kept)."""
    items = list(data.items())
    n = max(1, min(int(n), len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        out.append(dict(items[start:stop]))
        start = stop
    return out


def _train_chunk(chunk: dict[str, Any], *, max_epochs: int, horizon_days: int, validate: bool,
                 seed: int, progress: Any = None, metrics: bool = True,
                 counts: Mapping[str, tuple[int, int]] | None = None,
                 for_prediction: bool = False, warm: Mapping[str, Any] | None = None,
                 warm_share: float = 0.0,
                 ) -> dict[str, Any]:  # fmt: skip
    """One batched pass over ``chunk``: the whole universe in process, or one Dask worker's
    share (module level, so a worker can unpickle it)."""
    return train_many(
        chunk,
        nn=NNRegressor(max_epochs=max_epochs, random_state=seed),
        horizon_days=horizon_days,
        leakage_diagnostic=validate,
        refit="all",
        seed=seed,
        progress=progress,
        metrics=metrics,
        counts={s: c for s, c in (counts or {}).items() if s in chunk},
        flatten=for_prediction,
        warm={s: n for s, n in (warm or {}).items() if s in chunk},
        warm_share=warm_share,
    )


def _train_pooled(
    report: TrainReport,
    data: dict[str, Any],
    kind: str,
    horizon_days: int,
    min_samples: int,
    max_epochs: int,
    seed: int,
    validate: bool,
    target: str = "return",
) -> TrainReport:
    fit = train_pooled(
        data, kind=kind, horizon_days=horizon_days, min_samples=min_samples,
        max_epochs=max_epochs, seed=seed, validate=validate, target=target,
    )  # fmt: skip
    report.predictor = fit.predictor
    if fit.predictor is not None:  # listed for counts and reports; scoring uses the predictor
        report.models[POOLED] = fit.predictor.pooled
        report.models.update(fit.residual_models)
    report.metrics.update(fit.metrics)
    report.failed.update(fit.failed)
    return report


def save_models(store: Store, report: TrainReport, models_dir, *, horizon_days: int = 14) -> None:
    """Write each trained model atomically under ``models_dir`` and its record to the database.

    A model that cannot be saved (:class:`MLError`, e.g. a symbol that cannot be a folder) moves
    from ``report.models`` to ``report.failed`` with the reason; the others are still saved.
    A pooled / hierarchical report (``report.predictor``) is saved as one model, ``_pooled``
    (its residual models inside it), with one record of that name.
    """
    ms = ModelStore(models_dir)
    now = datetime.now(UTC)
    if report.predictor is not None:
        _save_pooled(store, report, ms, now, horizon_days)
        return
    for sym, model in list(report.models.items()):
        metrics = report.metrics.get(sym, {})
        meta = {
            "features": list(report.features),
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
                # rows the stored model was fitted on: every sample known by as_of
                training_samples=int(metrics.get("training_samples", report.samples.get(sym, 0))),
                train_end=report.as_of,
                version=version,
                metrics=metrics,
            )
        )


def _save_pooled(store: Store, report: TrainReport, ms: ModelStore, now: datetime,
                 horizon_days: int) -> None:  # fmt: skip
    """The pooled predictor under ``_pooled``, then its record (the order of ``save_models``)."""
    metrics = report.metrics.get(POOLED, {})
    n = int(metrics.get("training_samples", sum(report.samples.values())))
    version = ms.save_pooled(
        report.predictor,
        {
            "features": list(report.features),
            "metrics": metrics,
            "training_samples": n,
            "symbols": sorted(report.samples),
            "trained_at": now.isoformat(),
            "as_of": report.as_of.isoformat() if report.as_of else None,
            "horizon_days": horizon_days,
        },
    ).name
    store.records.upsert_model_record(
        ModelRecord(
            symbol=POOLED,
            trained_at=now,
            training_samples=n,
            train_end=report.as_of,
            version=version,
            metrics=metrics,
        )  # fmt: skip
    )
