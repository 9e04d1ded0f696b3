"""``/api/ml/status`` and ``/api/ml/models`` payloads from the model records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sentinel.db import ModelRecord
from sentinel.ml.status import ml_models, ml_status

NOTES_KEYS = {"avg_validation_rmse", "avg_validation_mae", "avg_validation_r2",
              "total_trained_samples"}  # fmt: skip


def _record(sym: str, rmse: float, r2: float | None, ic: float | None, n: int) -> ModelRecord:
    metrics = {
        "validation_rmse": rmse, "validation_mae": rmse / 2, "validation_r2": r2,
        "validation_ic": ic, "training_samples": n,
        "baselines": {"zero": {"rmse": 0.05, "ic": None}, "momentum": {"rmse": 0.06, "ic": 0.02}},
    }  # fmt: skip
    return ModelRecord(symbol=sym, trained_at=datetime(2024, 1, 1, tzinfo=UTC),
                       training_samples=n, metrics=metrics)  # fmt: skip


def test_status_shape_and_averages(store):
    empty = ml_status(store)
    assert empty["symbols_with_models"] == 0
    assert empty["aggregate_metrics"]["avg_validation_rmse"] is None
    store.records.set_settings({"ml_wavelet_blend_ratio": 0.6, "ml_enabled": False})
    store.records.upsert_model_record(_record("AAA", 0.02, 0.1, 0.2, 150))
    store.records.upsert_model_record(_record("BBB", 0.04, None, None, 250))
    status = ml_status(store)
    assert status["enabled"] is False and status["blend_ratio"] == 0.6  # DB overrides
    assert status["symbols_with_models"] == 2
    agg = status["aggregate_metrics"]
    assert set(agg) >= NOTES_KEYS
    assert agg["avg_validation_rmse"] == pytest.approx(0.03)
    assert agg["avg_validation_r2"] == pytest.approx(0.1)  # undefined R² left out, not 0
    assert agg["avg_validation_ic"] == pytest.approx(0.2)
    assert agg["total_trained_samples"] == 400
    assert agg["baselines"]["momentum"]["avg_validation_ic"] == pytest.approx(0.02)
    assert agg["baselines"]["zero"]["avg_validation_ic"] is None
    json.dumps(status, allow_nan=False)
    models = ml_models(store)["models"]
    assert [m["symbol"] for m in models] == ["AAA", "BBB"]
    assert models[0]["validation_mae"] == 0.01 and models[1]["training_samples"] == 250
