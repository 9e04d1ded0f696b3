"""The notes' ``/api/ml/status`` and ``/api/ml/models`` payloads, from the records and the files.

Kept apart from the CLI so the API returns exactly what ``sentinel ml status`` prints. Reads the
database (model records, sample counts, settings) and checks each model folder without loading it
(:meth:`~sentinel.ml.model_files.ModelStore.verify`: no TensorFlow). A model whose files fail
their checks is listed as ``broken`` with the reason. The files are what predictions use, so
where a record disagrees with them (a process killed between the model swap and its record) the
figures come from the files' metadata and the model is listed as ``stale_record``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sentinel.db import ModelRecord, Store
from sentinel.ml.baselines import BASELINES
from sentinel.ml.model_files import POOLED, ModelHealth, ModelStore
from sentinel.ml.validation import aggregate_metrics
from sentinel.settings import Settings, effective_settings


def record_metrics(rec: ModelRecord) -> dict[str, Any]:
    """A record's validation report, with ``training_samples`` from the record if absent."""
    metrics = dict(rec.metrics or {})
    metrics.setdefault("training_samples", int(rec.training_samples))
    return metrics


def _models_dir(store: Store, models_dir: Path | None) -> Path:
    if models_dir is not None:
        return Path(models_dir)
    return effective_settings(store.records.get_stored_settings()).models_dir


def _from_files(symbol: str, health: ModelHealth) -> ModelRecord:
    """The record a model's own metadata implies (what the files were saved with)."""
    meta = health.metadata or {}
    metrics = dict(meta.get("metrics") or {})
    samples = meta.get("training_samples") or metrics.get("training_samples") or 0
    trained = meta.get("trained_at")
    as_of = meta.get("as_of")
    return ModelRecord(
        symbol=symbol,
        trained_at=datetime.fromisoformat(trained) if trained else None,
        training_samples=int(samples),
        train_end=datetime.fromisoformat(as_of).date() if as_of else None,
        version=health.version,
        metrics=metrics,
    )


def model_rows(store: Store, models_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per symbol with a record or a model folder: ``symbol``, ``record`` (the figures
    to show), ``status`` (``ok`` | ``broken`` | ``stale_record``) and ``problem``. A stored
    pooled model is the first row, ``_pooled``, checked like the others."""
    files = ModelStore(_models_dir(store, models_dir))
    records = {r.symbol: r for r in store.records.get_model_records()}
    rows = [
        model_row(sym, records.get(sym), files.verify(sym))
        for sym in sorted((set(records) - {POOLED}) | set(files.symbols()))
    ]
    if POOLED in records or files.has_pooled():  # ml.model pooled / hierarchical: one row
        rows.insert(0, model_row(POOLED, records.get(POOLED), files.verify_pooled()))
    return rows


def model_row(symbol: str, rec: ModelRecord | None, health: ModelHealth) -> dict[str, Any]:
    """A symbol's row of :func:`model_rows` from its record (if any) and its files' check."""
    status, problem = "ok", None
    if not health.ok:
        status, problem = "broken", health.problem
    elif rec is None:
        status, problem = "stale_record", "no database record; figures from the model files"
        rec = _from_files(symbol, health)
    elif rec.version and health.version and rec.version != health.version:
        status = "stale_record"
        problem = (
            f"the record names version {rec.version} but the files hold {health.version} "
            "(a save was interrupted before its record); figures from the model files"
        )
        rec = _from_files(symbol, health)
    return {"symbol": symbol, "record": rec, "status": status, "problem": problem}


def ml_status(store: Store, settings: Settings | None = None) -> dict[str, Any]:
    """``GET /api/ml/status``: the notes' shape plus average IC, hit rate and the baselines.

    ``aggregate_metrics`` averages each figure over the symbols that define it (an undefined R²
    or IC is left out, not counted as 0), so the averages can be compared with the baselines'.
    A stored pooled model is not averaged in: ``pooled_model`` shows its own figures.
    ``broken_models`` names each model that cannot be used and why; ``stale_records`` each
    record that disagrees with its files.
    """
    s = settings or effective_settings(store.records.get_stored_settings())
    rows = model_rows(store, s.models_dir)
    pooled = [r for r in rows if r["symbol"] == POOLED]
    per_symbol = [r for r in rows if r["symbol"] != POOLED]
    agg = aggregate_metrics(record_metrics(r["record"]) for r in per_symbol)
    return {
        "enabled": bool(s.ml_enabled),
        "blend_ratio": float(s.ml_wavelet_blend_ratio),
        "ml_model": s.ml_model,
        # the pooled / hierarchical model, as /api/ml/models lists it (None when none is stored)
        "pooled_model": (
            model_entry(pooled[0]["record"], pooled[0]["status"], pooled[0]["problem"])
            if pooled
            else None
        ),  # fmt: skip
        "symbols_with_models": len(per_symbol),
        "usable_models": sum(r["status"] != "broken" for r in per_symbol),
        "broken_models": {r["symbol"]: r["problem"] for r in rows if r["status"] == "broken"},
        "stale_records": {r["symbol"]: r["problem"] for r in rows if r["status"] == "stale_record"},
        "total_training_samples": store.db.count("training_samples"),
        "aggregate_metrics": agg,
    }


def baseline_ics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Each stored baseline's validation IC, in :data:`~sentinel.ml.baselines.BASELINES` order.

    Reports saved before the current set hold ``zero`` and ``momentum`` (the 20-day return):
    those are shown under their stored names, never relabelled.
    """
    base = metrics.get("baselines") or {}
    order = [b for b in BASELINES if b in base] + sorted(set(base) - set(BASELINES))
    return {name: (base.get(name) or {}).get("ic") for name in order}


def best_baseline(metrics: dict[str, Any]) -> tuple[str | None, float | None]:
    """The baseline with the highest validation IC: the figure a model's IC must beat."""
    defined = [(ic, name) for name, ic in baseline_ics(metrics).items() if ic is not None]
    if not defined:
        return None, None
    ic, name = max(defined)
    return name, ic


def model_entry(rec: ModelRecord, status: str = "ok", problem: str | None = None) -> dict[str, Any]:
    """One symbol's model as the API lists it, with every baseline's IC beside its own.

    ``baseline_ic`` is the best baseline's IC (named by ``best_baseline``), ``baseline_ics``
    each one's.
    """
    m = rec.metrics or {}
    best_name, best_ic = best_baseline(m)
    return {
        "symbol": rec.symbol,
        "status": status,
        "problem": problem,
        "training_samples": int(rec.training_samples),
        "validation_rmse": m.get("validation_rmse"),
        "validation_mae": m.get("validation_mae"),
        "validation_r2": m.get("validation_r2"),
        "validation_ic": m.get("validation_ic"),
        "baseline_ic": best_ic,
        "best_baseline": best_name,
        "baseline_ics": baseline_ics(m),
        "last_trained_at": rec.trained_at.isoformat() if rec.trained_at else None,
        "train_end": rec.train_end.isoformat() if rec.train_end else None,
        "version": rec.version,
    }


def ml_models(store: Store, models_dir: Path | None = None) -> dict[str, Any]:
    """``GET /api/ml/models``: one entry per symbol with its validation figures and health."""
    return {
        "models": [
            model_entry(r["record"], r["status"], r["problem"])
            for r in model_rows(store, models_dir)
        ]
    }


def files_fingerprint(models_dir: Path) -> tuple[Any, ...]:
    """What the model folders look like (names, versions, file sizes and times): a cache of
    :func:`ml_models` keyed on it sees a file changed or corrupted on disk, not only records."""
    out: list[Any] = []
    try:
        entries = sorted(os.scandir(models_dir), key=lambda e: e.name)
    except OSError:
        return ()
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            target = os.readlink(entry.path) if entry.is_symlink() else ""
            files = sorted(
                (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in os.scandir(entry.path)
            )
        except OSError:
            target, files = "?", []
        out.append((entry.name, target, tuple(files)))
    return tuple(out)
