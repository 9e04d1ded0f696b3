"""The notes' ``/api/ml/status`` and ``/api/ml/models`` payloads, built from the model records.

Kept apart from the CLI so the API returns exactly what ``sentinel ml status`` prints. Reads only
the database (model records, sample counts, settings): no TensorFlow, no model folder.
"""

from __future__ import annotations

from typing import Any

from sentinel.db import ModelRecord, Store
from sentinel.ml.validation import aggregate_metrics
from sentinel.settings import Settings, effective_settings


def record_metrics(rec: ModelRecord) -> dict[str, Any]:
    """A record's validation report, with ``training_samples`` from the record if absent."""
    metrics = dict(rec.metrics or {})
    metrics.setdefault("training_samples", int(rec.training_samples))
    return metrics


def ml_status(store: Store, settings: Settings | None = None) -> dict[str, Any]:
    """``GET /api/ml/status``: the notes' shape plus average IC, hit rate and the baselines.

    ``aggregate_metrics`` averages each figure over the symbols that define it (an undefined R²
    or IC is left out, not counted as 0), so the averages can be compared with the baselines'.
    """
    s = settings or effective_settings(store.records.get_stored_settings())
    records = store.records.get_model_records()
    agg = aggregate_metrics(record_metrics(r) for r in records)
    return {
        "enabled": bool(s.ml_enabled),
        "blend_ratio": float(s.ml_wavelet_blend_ratio),
        "symbols_with_models": len(records),
        "total_training_samples": store.db.count("training_samples"),
        "aggregate_metrics": agg,
    }


def model_entry(rec: ModelRecord) -> dict[str, Any]:
    """One symbol's model as the API lists it (with the momentum baseline's IC beside its own)."""
    m = rec.metrics or {}
    return {
        "symbol": rec.symbol,
        "training_samples": int(rec.training_samples),
        "validation_rmse": m.get("validation_rmse"),
        "validation_mae": m.get("validation_mae"),
        "validation_r2": m.get("validation_r2"),
        "validation_ic": m.get("validation_ic"),
        "baseline_ic": (m.get("baselines") or {}).get("momentum", {}).get("ic"),
        "last_trained_at": rec.trained_at.isoformat() if rec.trained_at else None,
        "train_end": rec.train_end.isoformat() if rec.train_end else None,
        "version": rec.version,
    }


def ml_models(store: Store) -> dict[str, Any]:
    """``GET /api/ml/models``: one entry per symbol with its validation figures."""
    return {"models": [model_entry(rec) for rec in store.records.get_model_records()]}
