"""`sentinel ml train --model`: one stored pooled model, listed, used by `ml.mode: current`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli._common import state
from cli.ml import app
from engine.config import RunConfig
from sentinel.errors import ConfigError
from sentinel.settings import get_settings

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 6-symbol demo store with a hierarchical rank model trained through the CLI."""
    from sentinel.db import Store
    from sentinel.ml.dataset import generate_samples
    from tests.conftest import make_demo_db

    tmp = tmp_path_factory.mktemp("pooled_cli")
    db = make_demo_db(tmp, 3, 6, "2015-01-01", "2016-12-31")
    store = Store(f"sqlite:///{db}")
    generate_samples(store, [s.symbol for s in store.market.securities()], horizon_days=14)
    store.records.set_settings({"ml_min_samples_per_symbol": 30})
    mp = pytest.MonkeyPatch()
    mp.setattr(state, "database_url", f"sqlite:///{db}")
    mp.setenv("SENTINEL_DATA_DIR", str(tmp / "data"))
    get_settings.cache_clear()
    res = runner.invoke(
        app,
        ["train", "--model", "hierarchical", "--target", "rank", "--max-epochs", "2",
         "--no-validate"],
        catch_exceptions=False,
    )  # fmt: skip
    yield store, tmp / "data" / "ml_models", " ".join(res.output.split()), res.exit_code
    mp.undo()
    get_settings.cache_clear()


def test_train_model_saves_one_pooled_model_with_its_record(trained):
    from sentinel.ml.model_files import ModelStore

    store, models_dir, out, code = trained
    assert code == 0, out
    assert f"hierarchical model (target rank) saved as {models_dir / '_pooled'}" in out
    ms = ModelStore(models_dir)
    meta = ms.read_pooled_metadata()
    assert (meta["kind"], meta["target"]) == ("hierarchical", "rank")
    assert ms.symbols() == []  # residual models live inside _pooled, not as per-symbol models
    assert set(meta["residual_weights"]) <= set(meta["symbols"]) and meta["residual_weights"]
    rec = store.records.get_model_record("_pooled")
    assert rec is not None and rec.version == (models_dir / "_pooled").resolve().name
    assert rec.training_samples == store.db.count("training_samples")


def test_status_lists_the_pooled_model(trained):
    store, _, _, _ = trained
    res = runner.invoke(app, ["status", "--json"], catch_exceptions=False)
    body = json.loads(res.output)
    pooled = body["pooled_model"]
    assert pooled["symbol"] == "_pooled" and pooled["status"] == "ok"
    rec = store.records.get_model_record("_pooled")
    assert pooled["validation_ic"] == rec.metrics["validation_ic"]
    assert body["symbols_with_models"] == 0
    text = " ".join(runner.invoke(app, ["status"], catch_exceptions=False).output.split())
    assert "pooled model _pooled (ok, version" in text and "best baseline IC" in text


def _cfg(**ml) -> RunConfig:
    return RunConfig.model_validate(
        {
            "name": "pooled-current",
            "start": "2016-10-03",
            "end": "2016-11-30",
            "rebalance": {"every": "weekly", "weekday": "friday"},
            "strategy": {"name": "top_n", "params": {"n": 2}},
            "ml": {"enabled": True, "blend_ratio": 0.5, "mode": "current", **ml},
        }
    )


def test_current_mode_scores_every_symbol_with_the_stored_pooled_model(trained):
    from engine.backtest import run_backtest

    store, models_dir, _, _ = trained
    result = run_backtest(_cfg(model="hierarchical", target="rank"), store=store, save=False)
    preds = result.predictions
    version = (models_dir / "_pooled").resolve().name
    assert (preds["model_id"] == f"current:hierarchical:{version}").all()
    assert preds["ml_score"].notna().all()


@pytest.mark.parametrize(
    ("ml", "message"),
    [
        ({"model": "pooled", "target": "rank"}, "is kind hierarchical with target rank"),
        ({"model": "hierarchical", "target": "return"}, "is kind hierarchical with target rank"),
        ({"model": "per_symbol"}, "holds only a pooled model (kind hierarchical)"),
    ],
)
def test_a_stored_kind_other_than_the_run_asks_is_one_line_error(trained, ml, message):
    from engine.backtest import run_backtest

    store, _, _, _ = trained
    with pytest.raises(ConfigError, match=r"ml\.model: ") as err:
        run_backtest(_cfg(**ml), store=store, save=False)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_model_or_target_option_is_named(trained):
    with pytest.raises(ConfigError, match="--model: one of per_symbol, pooled, hierarchical"):
        runner.invoke(app, ["train", "--model", "global"], catch_exceptions=False)
    with pytest.raises(ConfigError, match="--target excess: per-symbol models"):
        runner.invoke(app, ["train", "--model", "per_symbol", "--target", "excess"],
                      catch_exceptions=False)  # fmt: skip


def test_the_weekly_retrain_follows_the_ml_model_setting(trained, tmp_path):
    from sentinel.ml.model_files import ModelStore
    from sentinel.ml.status import ml_models
    from sentinel.retrain import RetrainManager
    from sentinel.settings import Settings

    store, _, _, _ = trained
    settings = Settings(data_dir=tmp_path, ml_model="pooled", ml_target="excess")
    manager = RetrainManager(store, settings, max_epochs=2, validate=False, tf_threads=None,
                             nice=0)  # fmt: skip
    summary = manager.run(trigger="test")
    assert summary["symbols_trained"] == 1 and "_pooled" in summary["results"]
    ms = ModelStore(settings.models_dir)
    meta = ms.read_pooled_metadata()
    assert (meta["kind"], meta["target"], meta["residual_weights"]) == ("pooled", "excess", {})
    assert ms.symbols() == []
    rows = ml_models(store, settings.models_dir)["models"]  # what GET /api/ml/models returns
    assert [(r["symbol"], r["status"]) for r in rows] == [("_pooled", "ok")]
    assert rows[0]["version"] == (settings.models_dir / "_pooled").resolve().name


def test_the_api_shows_the_stored_pooled_model_and_404s_without_one(trained, tmp_path):
    from fastapi.testclient import TestClient

    from sentinel.api import create_app
    from sentinel.ml.status import model_rows
    from sentinel.settings import Settings

    store, models_dir, _, _ = trained
    api = {"environment": "test", "api_token": "test-token-0123456789"}
    with TestClient(create_app(store, Settings(data_dir=models_dir.parent, **api))) as client:
        body = client.get("/api/ml/models/_pooled").json()
        listed = client.get("/api/ml/models").json()["models"][0]
        assert body["symbol"] == listed["symbol"] == "_pooled"
        # the row the list shows, whatever state an earlier test of this module left it in
        assert (body["status"], body["version"]) == (listed["status"], listed["version"])
        assert body["status"] in ("ok", "stale_record")
        shown = model_rows(store, models_dir)[0]  # the figures the list's row rests on
        assert shown["symbol"] == "_pooled" and body["metrics"] == shown["record"].metrics
        assert "baselines" in body["metrics"]
    from sentinel.db import Store
    from tests.conftest import make_demo_db

    empty = Store(f"sqlite:///{make_demo_db(tmp_path, 1, 2, '2016-01-01', '2016-03-31')}")
    with TestClient(create_app(empty, Settings(data_dir=tmp_path / "data", **api))) as client:
        res = client.get("/api/ml/models/_pooled")
        assert res.status_code == 404 and "sentinel ml train --model" in res.json()["detail"]
