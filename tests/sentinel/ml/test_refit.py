"""Walk-forward refit on every known label: epochs/trees picked on a purged inner split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.sentinel.ml.conftest import FAST_NN, make_data


def test_es_purge_drops_rows_whose_labels_reach_the_slice():
    from sentinel.ml.batched import es_purge
    from sentinel.ml.nn import split_counts

    d = np.datetime64("2015-01-02") + 7 * np.arange(40)
    a = split_counts(40, 0.15)[0]
    n = es_purge(d, 0.15, 28)
    direct = sum(1 for i in range(a) if (d[a] - d[i]).astype(int) <= 28)
    assert n == direct == 4  # weekly rows within 28 days of the slice's first date


def test_fixed_epochs_train_exactly_that_many_and_alone_equals_stacked():
    from sentinel.ml.batched import fit_nn_batched
    from sentinel.ml.nn import NNRegressor

    sets = [make_data(60 + 10 * i, seed=i)[:2] for i in range(3)]
    params = NNRegressor(**FAST_NN)
    stacked = fit_nn_batched(sets, params, epochs=[1, 3, 2])
    assert [r.model.n_epochs_ for r in stacked] == [1, 3, 2]
    assert all(r.model.n_samples_ == len(s[1]) for r, s in zip(stacked, sets, strict=True))
    alone = fit_nn_batched(sets[1:2], params, epochs=[3])[0].model
    x = sets[0][0][:5]
    np.testing.assert_allclose(stacked[1].model.predict(x), alone.predict(x), rtol=1e-4)
    other = fit_nn_batched(sets[1:2], params, epochs=[1])[0].model
    assert not np.allclose(other.predict(x), alone.predict(x))


def test_purge_that_leaves_too_few_rows_fails_alone():
    from sentinel.ml.batched import fit_nn_batched
    from sentinel.ml.nn import NNRegressor

    sets = [make_data(40, seed=0)[:2], make_data(40, seed=1)[:2]]
    res = fit_nn_batched(sets, NNRegressor(**FAST_NN), purge=[33, 0])
    assert res[0].model is None and "left after purging 33" in res[0].error
    assert res[1].model is not None


def test_xgb_early_stopping_picks_few_trees_on_noise_more_on_signal():
    from sentinel.ml.xgb import XGBRegressorModel

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    noise = rng.normal(size=300)
    signal = np.sin(2 * X[:, 0]) + 0.05 * rng.normal(size=300)
    fit = {}
    for name, y in (("noise", noise), ("signal", signal)):
        fit[name] = XGBRegressorModel(n_estimators=200).fit(
            X[:220], y[:220], eval_set=(X[240:], y[240:])
        )
    assert fit["noise"].best_n_trees_ < 30 < fit["signal"].best_n_trees_
    assert fit["signal"].booster_.num_boosted_rounds() == fit["signal"].best_n_trees_


def test_train_many_refits_on_every_row_with_the_picked_counts():
    from sentinel.ml.batched import train_many
    from sentinel.ml.nn import NNRegressor
    from sentinel.ml.xgb import XGBRegressorModel

    data = {"A": make_data(90, seed=3), "B": make_data(70, seed=4)}
    nn, xgb = NNRegressor(**FAST_NN), XGBRegressorModel(n_estimators=30)
    full = train_many(data, nn=nn, xgb=xgb, leakage_diagnostic=False)
    inner = train_many(data, nn=nn, xgb=xgb, leakage_diagnostic=False, refit="train")
    for sym, (_, y, _) in data.items():
        f, i = full[sym], inner[sym]
        assert f.info["n_samples"] == len(y) == f.model.nn_.n_samples_ == f.model.xgb_.n_samples_
        assert i.info["n_samples"] < len(y)
        # the refit uses exactly the counts early stopping picked on the inner split
        assert f.info["nn_epochs"] == i.model.nn_.best_epoch_ == f.model.nn_.n_epochs_
        assert f.info["xgb_trees"] == i.model.xgb_.best_n_trees_
        # metrics describe the inner model in both modes; only the trained-row count differs
        assert {**f.metrics, "training_samples": 0} == {**i.metrics, "training_samples": 0}
        assert f.metrics["training_samples"] == len(y)


def test_scaler_is_sklearns_and_round_trips_through_json(data):
    from sklearn.preprocessing import StandardScaler

    from sentinel.ml._scaler import fit_scaler, scaler_from_json, scaler_to_json

    X = data[0].copy()
    X[:, 3] = 7.0  # a constant column gets scale 1, as sklearn does
    sc = fit_scaler(X)
    assert isinstance(sc, StandardScaler) and sc.scale_[3] == 1.0
    back = scaler_from_json(json.loads(json.dumps(scaler_to_json(sc))), X.shape[1])
    np.testing.assert_array_equal(back.transform(X), sc.transform(X))
    np.testing.assert_allclose(sc.transform(X)[:, 0], (X[:, 0] - X[:, 0].mean()) / X[:, 0].std())
    with pytest.raises(ValueError, match="does not fit 5 features"):
        scaler_from_json(scaler_to_json(sc), 5)


def _rewrite(folder, name, change):
    """Edit one stored JSON file and re-record its checksum (a file written by other code)."""
    import hashlib

    meta_path = folder / "ensemble_metadata.json"
    path = folder / name
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))
    meta = json.loads(meta_path.read_text())
    meta["files"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


def test_legacy_scaler_files_load_and_unknown_ones_ask_for_a_retrain(tmp_path, trained_many):
    from sentinel.ml.errors import ModelLoadError
    from sentinel.ml.model_files import ModelStore

    store = ModelStore(tmp_path)
    model = trained_many["S0"].model
    folder = store.save("S0", model)
    x = make_data(3, seed=9)[0]
    for name in ("nn_scaler.json", "xgb_scaler.json"):  # as written before sklearn scalers

        def legacy(obj):
            obj.pop("class")
            obj.pop("n_samples_seen")

        _rewrite(folder, name, legacy)
    np.testing.assert_allclose(store.load("S0").model.predict(x), model.predict(x), rtol=1e-6)

    def unknown(obj):
        obj["class"] = "sklearn.preprocessing.RobustScaler"

    _rewrite(folder, "nn_scaler.json", unknown)
    with pytest.raises(ModelLoadError, match="retrain"):
        store.load("S0")
    assert "retrain" in store.verify("S0").problem
