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


def _save(root, sym: str, model, rmse: float, *, record: bool, store=None) -> str:
    """What ``save_models`` does for one symbol; ``record=False`` stops after the file swap (as a
    process killed between the two steps would)."""
    from sentinel.ml.model_files import ModelStore

    metrics = {"validation_rmse": rmse, "training_samples": 100}
    meta = {"metrics": metrics, "training_samples": 100, "trained_at": "2024-02-01T00:00:00+00:00",
            "as_of": "2024-01-31"}  # fmt: skip
    version = ModelStore(root).save(sym, model, metadata=meta).name
    if record:
        store.records.upsert_model_record(
            ModelRecord(
                symbol=sym,
                trained_at=datetime(2024, 2, 1, tzinfo=UTC),
                training_samples=100,
                version=version,
                metrics=metrics,
            )
        )
    return version


def test_broken_and_stale_models_are_reported_with_the_reason(
    store, fitted_ensemble, tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from cli._common import state
    from cli.ml import app
    from sentinel.api import create_app
    from sentinel.settings import Settings, get_settings

    settings = Settings(data_dir=tmp_path / "data", environment="test", api_token="t" * 20)
    root = settings.models_dir
    _save(root, "AAA", fitted_ensemble, 0.01, record=True, store=store)
    _save(root, "BBB", fitted_ensemble, 0.02, record=True, store=store)
    _save(root, "CCC", fitted_ensemble, 0.03, record=True, store=store)
    new = _save(root, "CCC", fitted_ensemble, 0.05, record=False)  # killed before the record
    _save(root, "DDD", fitted_ensemble, 0.04, record=False)  # killed before its first record
    xgb = root / "AAA" / "xgb_model.json"
    xgb.write_bytes(xgb.read_bytes().replace(b"1", b"2", 1))  # a changed byte

    models = {m["symbol"]: m for m in ml_models(store, settings.models_dir)["models"]}
    assert sorted(models) == ["AAA", "BBB", "CCC", "DDD"]
    assert models["AAA"]["status"] == "broken"
    assert "xgb_model.json does not match its recorded checksum" in models["AAA"]["problem"]
    assert models["BBB"]["status"] == "ok" and models["BBB"]["problem"] is None
    ccc = models["CCC"]
    assert ccc["status"] == "stale_record" and "record" in ccc["problem"]
    assert ccc["version"] == new and ccc["validation_rmse"] == 0.05  # what the files hold
    assert models["DDD"]["status"] == "stale_record" and models["DDD"]["validation_rmse"] == 0.04

    status = ml_status(store, settings)
    assert list(status["broken_models"]) == ["AAA"]
    assert "checksum" in status["broken_models"]["AAA"]
    assert sorted(status["stale_records"]) == ["CCC", "DDD"]
    assert status["usable_models"] == 3

    with TestClient(create_app(store, settings)) as client:
        listed = {m["symbol"]: m for m in client.get("/api/ml/models").json()["models"]}
        assert listed["AAA"]["status"] == "broken" and "checksum" in listed["AAA"]["problem"]
        xgb.write_bytes(b"{}")  # another change on disk, no record touched
        again = {m["symbol"]: m for m in client.get("/api/ml/models").json()["models"]}
        assert "checksum" in again["AAA"]["problem"]
        (root / "BBB" / "nn_scaler.json").write_text("{")  # the cache must not hide this
        again = {m["symbol"]: m for m in client.get("/api/ml/models").json()["models"]}
        assert again["BBB"]["status"] == "broken" and "nn_scaler.json" in again["BBB"]["problem"]
        body = client.get("/api/ml/status").json()
        assert sorted(body["broken_models"]) == ["AAA", "BBB"]

    monkeypatch.setattr(state, "database_url", store.engine.url.render_as_string(False))
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    out = CliRunner().invoke(app, ["status", "--json"], catch_exceptions=False).output
    get_settings.cache_clear()
    printed = json.loads(out)
    assert sorted(printed["broken_models"]) == ["AAA", "BBB"]
    assert "checksum" in printed["broken_models"]["AAA"]


#: ``save_models`` for one model, killed between the file swap and the database record (the
#: pause before the record is injected here, not in the training code). The model is the stored
#: one, loaded: a fresh fit would cost the child seconds, and the save is what is under test.
SAVE_THEN_HANG = """
import sys, time
from datetime import date
from sentinel.db import Store
from sentinel.db.records import RecordRepository
from sentinel.ml.model_files import ModelStore
from sentinel.ml.training import TrainReport, save_models

url, root, mark = sys.argv[1:4]
model = ModelStore(root).load("AAA").model

def hang(self, record):
    open(mark, "w").close()
    time.sleep(120)

RecordRepository.upsert_model_record = hang
report = TrainReport(date(2024, 3, 1), models={"AAA": model}, samples={"AAA": 60},
                     metrics={"AAA": {"validation_rmse": 0.07, "training_samples": 60}})
save_models(Store(url), report, root)
"""


def test_a_kill_between_the_model_swap_and_its_record_shows_the_files(
    store, fitted_ensemble, tmp_path
):
    import signal
    import subprocess
    import sys
    import time

    from sentinel.ml.model_files import ModelStore

    root = tmp_path / "ml_models"
    old = _save(root, "AAA", fitted_ensemble, 0.01, record=True, store=store)
    mark = tmp_path / "mark"
    url = store.engine.url.render_as_string(False)
    proc = subprocess.Popen([sys.executable, "-c", SAVE_THEN_HANG, url, str(root), str(mark)],
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 120
    while not mark.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert mark.exists(), proc.stderr.read().decode()[-2000:]
    assert store.records.get_model_record("AAA").version == old  # the record is stale
    files = ModelStore(root).verify("AAA")
    assert files.ok and files.version != old
    (entry,) = ml_models(store, root)["models"]
    assert entry["status"] == "stale_record" and old in entry["problem"]
    assert entry["version"] == files.version
    assert entry["validation_rmse"] == 0.07 and entry["training_samples"] == 60
    assert entry["train_end"] == "2024-03-01"


def test_model_entry_lists_every_baseline_and_the_best_to_beat(store):
    from sentinel.ml.status import model_entry

    rec = _record("AAA", 0.02, 0.1, 0.01, 150)
    rec.metrics["baselines"] = {
        "zero": {"ic": None}, "reversal_20": {"ic": 0.03}, "momentum_60": {"ic": -0.01},
        "ridge": {"ic": 0.02},
    }  # fmt: skip
    entry = model_entry(rec)
    assert entry["baseline_ics"] == {"zero": None, "reversal_20": 0.03, "momentum_60": -0.01,
                                     "ridge": 0.02}  # fmt: skip
    assert (entry["best_baseline"], entry["baseline_ic"]) == ("reversal_20", 0.03)
    # a record saved before the set (zero + momentum) still reads, under its stored names
    old = model_entry(_record("BBB", 0.02, 0.1, 0.01, 150))
    assert old["baseline_ics"] == {"zero": None, "momentum": 0.02}
    assert (old["best_baseline"], old["baseline_ic"]) == ("momentum", 0.02)
