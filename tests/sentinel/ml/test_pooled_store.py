"""Pooled / hierarchical models on disk: round trip, integrity, kind checks, records, listings."""

from __future__ import annotations

import numpy as np
import pytest

N_SYM, N_SAMPLES = 6, 120


def tiny_universe(seed: int = 0):
    """Weekly samples of 6 symbols with a planted signal in feature 0."""
    rng = np.random.default_rng(seed)
    dates = np.datetime64("2015-01-02") + 7 * np.arange(N_SAMPLES)
    out = {}
    for i in range(N_SYM):
        X = rng.normal(size=(N_SAMPLES, 20))
        y = 0.03 * np.tanh(X[:, 0]) + 0.01 * rng.normal(size=N_SAMPLES)
        out[f"S{i}"] = (X, y, dates)
    return out


@pytest.fixture(scope="module")
def fits():
    """One fit per pooled kind (max_epochs 2): ``kind -> PooledFit``."""
    from sentinel.ml.pooled import train_pooled

    data = tiny_universe()
    # S5 below min_samples 100: no residual model of its own in the hierarchical fit
    data["S5"] = tuple(a[:60] for a in data["S5"])
    return {
        kind: train_pooled(
            data, kind=kind, horizon_days=14, min_samples=100, max_epochs=2, target="excess"
        )  # fmt: skip
        for kind in ("pooled", "hierarchical")
    }


def rows(seed: int = 1):
    rng = np.random.default_rng(seed)
    return {f"S{i}": rng.normal(size=20) for i in range(N_SYM)} | {"NEW": rng.normal(size=20)}


@pytest.mark.parametrize("kind", ["pooled", "hierarchical"])
def test_a_stored_pooled_model_predicts_exactly_as_the_one_in_memory(fits, kind, tmp_path):
    from sentinel.ml.model_files import ModelStore

    fit = fits[kind]
    ms = ModelStore(tmp_path)
    folder = ms.save_pooled(fit.predictor, {"features": [f"f{i}" for i in range(20)]})
    assert (tmp_path / "_pooled").resolve() == folder and ms.has_pooled()
    assert ms.symbols() == []  # the reserved name is never listed as a symbol
    stored = ms.load_pooled(kind, "excess")
    loaded = stored.predictor
    assert (loaded.kind, loaded.target) == (kind, "excess")
    assert loaded.weights == fit.predictor.weights
    if kind == "hierarchical":
        assert sorted(loaded.weights) == ["S0", "S1", "S2", "S3", "S4"]
    for seed in (1, 2):
        want, got = fit.predictor.predict_batch(rows(seed)), loaded.predict_batch(rows(seed))
        assert list(got) == list(want)
        np.testing.assert_array_equal(list(got.values()), list(want.values()))
    assert stored.metadata["features"] == [f"f{i}" for i in range(20)]


def test_a_second_save_swaps_the_version_and_removes_the_old_one(fits, tmp_path):
    from sentinel.ml.model_files import ModelStore

    ms = ModelStore(tmp_path)
    first = ms.save_pooled(fits["pooled"].predictor)
    second = ms.save_pooled(fits["hierarchical"].predictor)
    assert first != second and not first.exists()
    assert ms.read_pooled_metadata()["kind"] == "hierarchical"
    assert [p.name for p in (tmp_path / ".versions" / "_pooled").iterdir()] == [second.name]


def test_a_kind_or_target_mismatch_is_one_clear_line(fits, tmp_path):
    from sentinel.ml.errors import MLError
    from sentinel.ml.model_files import ModelStore

    ms = ModelStore(tmp_path)
    with pytest.raises(MLError, match="no pooled model"):
        ms.load_pooled("pooled")
    ms.save_pooled(fits["pooled"].predictor)
    with pytest.raises(MLError, match="kind pooled with target excess") as err:
        ms.load_pooled("hierarchical", "excess")
    assert "\n" not in str(err.value)
    with pytest.raises(MLError, match="kind pooled with target excess"):
        ms.load_pooled("pooled", "rank")


@pytest.mark.parametrize(
    "damage",
    ["pooled/xgb_model.json", "residuals/S0/nn_scaler.json", "pooled_metadata.json", "extra"],
)
def test_a_damaged_pooled_model_is_reported_and_never_loaded(fits, tmp_path, damage):
    from sentinel.ml.errors import ModelLoadError
    from sentinel.ml.model_files import ModelStore

    ms = ModelStore(tmp_path)
    folder = ms.save_pooled(fits["hierarchical"].predictor)
    target = folder / ("residuals/S0/notes.txt" if damage == "extra" else damage)
    target.write_bytes(b"{}" if damage != "extra" else b"x")
    health = ms.verify_pooled()
    assert not health.ok and health.problem
    with pytest.raises(ModelLoadError):
        ms.load_pooled()


def test_pooled_is_reserved_and_never_a_symbol(fits, tmp_path):
    from sentinel.ml.errors import MLError
    from sentinel.ml.model_files import POOLED, ModelStore
    from sentinel.symbols import is_valid_symbol

    assert not is_valid_symbol(POOLED)
    with pytest.raises(MLError, match="invalid symbol"):
        ModelStore(tmp_path).save(POOLED, fits["pooled"].predictor.pooled)


def test_save_models_stores_a_pooled_report_with_one_record_listed_beside_baselines(
    fits, store, tmp_path
):
    from datetime import date

    from sentinel.ml.status import ml_models, ml_status
    from sentinel.ml.training import TrainReport, save_models
    from sentinel.settings import Settings

    fit = fits["hierarchical"]
    report = TrainReport(date(2017, 5, 1), metrics=dict(fit.metrics), predictor=fit.predictor,
                         samples={f"S{i}": 120 for i in range(5)} | {"S5": 60})  # fmt: skip
    save_models(store, report, tmp_path / "ml_models")
    rec = store.records.get_model_record("_pooled")
    assert rec is not None and rec.train_end == date(2017, 5, 1)
    assert rec.training_samples == fit.metrics["_pooled"]["training_samples"] == 660
    assert (tmp_path / "ml_models" / "_pooled").resolve().name == rec.version
    assert [r.symbol for r in store.records.get_model_records()] == ["_pooled"]
    listed = ml_models(store, tmp_path / "ml_models")["models"]
    assert [m["symbol"] for m in listed] == ["_pooled"]
    row = listed[0]
    assert row["status"] == "ok" and row["version"] == rec.version
    assert row["validation_ic"] == fit.metrics["_pooled"]["validation_ic"]
    assert set(row["baseline_ics"]) == {"zero", "reversal_20", "momentum_60", "ridge"}
    status = ml_status(store, Settings(data_dir=tmp_path))  # models_dir: tmp_path / ml_models
    assert status["symbols_with_models"] == 0  # no per-symbol model; the pooled one apart
    assert status["pooled_model"] == row


def test_a_save_that_fails_before_the_swap_leaves_the_previous_model_in_use(
    fits, tmp_path, monkeypatch
):
    import sentinel.ml.model_files as mf

    ms = mf.ModelStore(tmp_path)
    first = ms.save_pooled(fits["pooled"].predictor)

    def killed(*args, **kwargs):
        raise OSError("killed before the swap")

    monkeypatch.setattr(mf.os, "replace", killed)
    with pytest.raises(OSError, match="before the swap"):
        ms.save_pooled(fits["hierarchical"].predictor)
    monkeypatch.undo()
    assert (tmp_path / "_pooled").resolve() == first
    assert ms.verify_pooled().ok
    loaded = ms.load_pooled("pooled")
    assert loaded.predictor.predict_batch(rows()) == fits["pooled"].predictor.predict_batch(rows())
