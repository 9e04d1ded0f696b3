"""``sentinel ml samples / train / status`` end to end on the demo store (tiny epochs)."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli._common import state
from cli.ml import app
from sentinel.ml.dataset import generate_samples
from sentinel.ml.model_files import ModelStore
from sentinel.settings import get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(demo_store, tmp_path, monkeypatch):
    """The CLI pointed at the demo store, models under a temporary SENTINEL_DATA_DIR."""
    monkeypatch.setattr(state, "database_url", demo_store.engine.url.render_as_string(False))
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield demo_store, tmp_path / "data" / "ml_models"
    get_settings.cache_clear()


def _invoke(*args: str) -> str:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return " ".join(res.output.split())  # Rich wraps at the terminal width


def test_samples_command_counts_and_is_idempotent(cli_env):
    store, _ = cli_env
    syms = ",".join(s.symbol for s in store.market.securities()[:2])
    out = _invoke("samples", "--full", "--symbols", syms)
    n = store.db.count("training_samples")
    assert n > 100
    assert f"{n:,} samples written for 2 symbols" in out
    out2 = _invoke("samples", "--symbols", syms)
    assert store.db.count("training_samples") == n
    assert f"{n:,} -> {n:,} samples" in out2
    out3 = _invoke("samples", "--incremental", "--symbols", syms)
    assert "incremental (90 days)" in out3
    assert store.db.count("training_samples") == n


def test_train_command_trains_skips_and_reports_failures(cli_env):
    store, models_dir = cli_env
    good = [s.symbol for s in store.market.securities()[:2]]
    generate_samples(store, good, horizon_days=14)
    samples = store.view(None).signals.get_training_samples(symbol=good[0])
    # a symbol with constant labels fails alone; one with too few samples is skipped
    rows = samples.head(60).assign(symbol="FLAT", label=0.01)
    rows = pd.concat([rows, samples.head(15).assign(symbol="FEW")])
    store.signals.upsert_training_samples(
        r._asdict() | {"date": r.date.date(), "label_known_at": r.label_known_at.date()}
        for r in rows.itertuples(index=False)
    )
    store.records.set_settings({"ml_min_samples_per_symbol": 30})  # DB override of the setting
    as_of = samples["label_known_at"].iloc[-10].date()
    args = ["train", "--max-epochs", "3", "--as-of", as_of.isoformat()]
    for s in [*good, "FLAT", "FEW", "NOPE"]:
        args += ["--symbol", s]
    out = _invoke(*args)
    assert "skipped FEW: 15 samples < ml_min_samples_per_symbol 30" in out
    assert "skipped NOPE: no training samples" in out
    assert "[failed] FLAT" in out and "constant" in out
    assert "2 trained, 2 skipped, 1 failed" in out
    for col in ("RMSE", "MAE", "R²", "IC", "baseline IC"):
        assert col in out
    assert ModelStore(models_dir).symbols() == sorted(good)
    records = {r.symbol: r for r in store.records.get_model_records()}
    assert sorted(records) == sorted(good)
    known = store.view(None).signals.get_training_samples(known_by=as_of)
    for s in good:
        assert records[s].train_end == as_of
        assert records[s].training_samples == int((known["symbol"] == s).sum())
        assert records[s].metrics["validation_rmse"] > 0

    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert status["symbols_with_models"] == 2
    assert status["total_training_samples"] == store.db.count("training_samples")
    agg = status["aggregate_metrics"]
    expected = sum(r.metrics["validation_rmse"] for r in records.values()) / 2
    assert agg["avg_validation_rmse"] == pytest.approx(expected)
    assert agg["total_trained_samples"] == sum(r.training_samples for r in records.values())
    assert set(agg["baselines"]) == {"zero", "reversal_20", "momentum_60", "ridge"}


def test_backfill_and_drift_commands(cli_env):
    store, _ = cli_env
    store.records.set_settings(
        {"ml_enabled": False}
    )  # wavelet-only rows: the wiring, without training
    syms = [s.symbol for s in store.market.securities()[:2]]
    days = store.market.trading_days()[-40:]
    res = runner.invoke(app, ["backfill", "--start", days[0].isoformat(), "--every", "10",
                              "--symbols", ",".join(syms), "--json"],
                         catch_exceptions=False)  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") :])
    assert summary["rows_written"] == 2 * 4 == store.db.count("ml_predictions")
    assert summary["fallbacks"] == {"ml disabled": 8}
    res = runner.invoke(app, ["drift", "--window", "30", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    # a row matures once its 14-day label window has closed on a day the store knows
    matured = sum(2 for d in days[0::10] if d + timedelta(days=14) <= days[-1])
    assert f"realised returns filled in: {matured}" in res.output
    report = json.loads(res.output[res.output.index("{") :])
    assert report["live"]["n_predictions"] == 0  # no ML forecast to score
    assert report["horizon_days"] == 14


def test_train_as_of_before_any_known_label_is_an_error(cli_env):
    from sentinel.errors import ConfigError

    store, models_dir = cli_env
    generate_samples(store, [store.market.securities()[0].symbol], horizon_days=14)
    with pytest.raises(ConfigError, match=r"--as-of 2000-01-01: no training sample"):
        runner.invoke(app, ["train", "--as-of", "2000-01-01"], catch_exceptions=False)
    assert not models_dir.exists() and not store.records.get_model_records()


def test_a_symbol_that_cannot_have_a_model_folder_never_stops_the_others(cli_env):
    """Samples of symbols that break the symbol rule (e.g. from an old store) fail alone."""
    store, models_dir = cli_env
    good = [s.symbol for s in store.market.securities()[:2]]
    generate_samples(store, good, horizon_days=14)
    samples = store.view(None).signals.get_training_samples(symbol=good[0])
    rows = pd.concat([samples.assign(symbol=s) for s in ("../evil", "aapl")])
    store.signals.upsert_training_samples(
        r._asdict() | {"date": r.date.date(), "label_known_at": r.label_known_at.date()}
        for r in rows.itertuples(index=False)
    )
    store.records.set_settings({"ml_min_samples_per_symbol": 30})
    out = _invoke("train", "--max-epochs", "2", "--no-validate")
    assert "[failed] ../evil: invalid symbol" in out and "[failed] aapl: invalid symbol" in out
    assert "2 trained, 0 skipped, 2 failed" in out
    assert ModelStore(models_dir).symbols() == sorted(good)
    assert sorted(r.symbol for r in store.records.get_model_records()) == sorted(good)
    assert not (models_dir.parent / "evil").exists()


def test_save_models_reports_a_model_it_cannot_save_and_saves_the_rest(store, tmp_path):
    from sentinel.ml.model_files import ModelStore
    from sentinel.ml.models import EnsembleModel, NNRegressor, XGBRegressorModel
    from sentinel.ml.training import TrainReport, save_models
    from tests.sentinel.ml.conftest import make_data

    X, y, _ = make_data(60)
    model = EnsembleModel(NNRegressor(max_epochs=2), XGBRegressorModel(n_estimators=5)).fit(X, y)
    report = TrainReport(None, models={"../evil": model, "GOOD": model}, samples={"GOOD": 60})
    save_models(store, report, tmp_path / "models")
    assert list(report.models) == ["GOOD"]
    assert "invalid symbol for a model folder" in report.failed["../evil"]
    assert ModelStore(tmp_path / "models").symbols() == ["GOOD"]
    assert [r.symbol for r in store.records.get_model_records()] == ["GOOD"]
