"""Read endpoints of ``/api/ml``: status, the model list (cached, ETag), one model, performance."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sentinel.db import ModelRecord

METRICS = {
    "validation_rmse": 0.021,
    "validation_mae": 0.016,
    "validation_r2": 0.48,
    "validation_ic": 0.12,
    "validation_hit_rate": 0.55,
    "training_samples": 120,
    "baselines": {"momentum": {"ic": 0.03, "rmse": 0.03}, "zero": {"rmse": 0.025}},
}


def add_record(store, symbol: str, **metrics) -> None:
    store.records.upsert_model_record(
        ModelRecord(
            symbol=symbol,
            trained_at=datetime.now(UTC),
            training_samples=120,
            train_end=date(2017, 12, 1),
            version="v1",
            metrics={**METRICS, **metrics},
        )
    )


def test_status_has_the_notes_shape_and_retrain_progress(demo_store, make_client):
    add_record(demo_store, "DAA")
    add_record(demo_store, "DAB", validation_rmse=0.031)
    body = make_client(demo_store).get("/api/ml/status").json()
    assert {"enabled", "blend_ratio", "symbols_with_models", "total_training_samples"} <= set(body)
    assert body["symbols_with_models"] == 2
    agg = body["aggregate_metrics"]
    assert abs(agg["avg_validation_rmse"] - 0.026) < 1e-12
    assert agg["total_trained_samples"] == 240
    assert body["retrain"]["state"] == "idle"


def test_models_lists_every_record_in_the_notes_shape(demo_store, make_client):
    add_record(demo_store, "DAB")
    add_record(demo_store, "DAA", validation_r2=float("nan"))  # undefined metric -> null
    client = make_client(demo_store)
    r = client.get("/api/ml/models")
    assert r.status_code == 200
    models = r.json()["models"]
    assert [m["symbol"] for m in models] == ["DAA", "DAB"]
    m = models[1]
    for key in ("training_samples", "validation_rmse", "validation_mae", "validation_r2"):
        assert m[key] == (120 if key == "training_samples" else METRICS[key])
    assert m["baseline_ic"] == 0.03
    assert datetime.fromisoformat(m["last_trained_at"]).year >= 2024
    assert models[0]["validation_r2"] is None


def test_models_list_is_cached_until_a_record_changes(demo_store, make_client):
    client = make_client(demo_store)
    add_record(demo_store, "DAA")
    first = client.get("/api/ml/models")
    etag = first.headers["etag"]
    assert client.get("/api/ml/models", headers={"If-None-Match": etag}).status_code == 304
    add_record(demo_store, "DAB")  # a write from anywhere (CLI, another process) invalidates
    second = client.get("/api/ml/models", headers={"If-None-Match": etag})
    assert second.status_code == 200
    assert second.headers["etag"] != etag
    assert [m["symbol"] for m in second.json()["models"]] == ["DAA", "DAB"]


def test_one_model_and_its_404s(demo_store, make_client):
    add_record(demo_store, "DAA")
    client = make_client(demo_store)
    body = client.get("/api/ml/models/DAA").json()
    assert body["symbol"] == "DAA" and body["validation_ic"] == 0.12
    assert body["metrics"]["baselines"]["momentum"]["ic"] == 0.03
    assert body["train_end"] == "2017-12-01"
    unknown = client.get("/api/ml/models/NOPE")
    assert unknown.status_code == 404
    assert "unknown symbol 'NOPE'" in unknown.json()["detail"]
    no_model = client.get("/api/ml/models/DAB")  # a known security without a model yet
    assert no_model.status_code == 404
    assert "no model for DAB yet: 0 training samples, 100 needed" in no_model.json()["detail"]


def test_performance_has_validation_and_live_drift(demo_store, make_client):
    add_record(demo_store, "DAA")
    day = date(2017, 6, 1)
    rows = []
    for i in range(30):
        for j, sym in enumerate(("DAA", "DAB", "DAC")):
            pred = 0.01 * ((i + j) % 5 - 2)
            rows.append({
                "symbol": sym, "date": day + timedelta(days=i), "predicted_return": pred,
                "blended_score": 0.5, "blend_ratio": 0.3, "model_mode": "walk_forward",
                "realized_return": pred + 0.002 * (j - 1),
            })  # fmt: skip
    demo_store.signals.upsert_ml_predictions(rows)
    client = make_client(demo_store)
    body = client.get("/api/ml/performance?window_days=60").json()
    assert body["validation"]["per_symbol"]["DAA"]["rmse"] == 0.021
    live = body["live"]
    assert live["n_predictions"] == 90
    assert live["aggregate"]["ic_pooled"] > 0.9
    assert set(live["per_symbol"]) == {"DAA", "DAB", "DAC"}
    assert client.get("/api/ml/performance?model_mode=current").json()["live"]["n_predictions"] == 0
    assert client.get("/api/ml/performance?model_mode=future").status_code == 422
    assert client.get("/api/ml/performance?window_days=0").status_code == 422
