"""One contract test over the three models: NN, XGBoost, ensemble."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from sentinel.ml.errors import ModelError, NotFittedError
from sentinel.ml.models import BaseModel, EnsembleModel, NNRegressor, XGBRegressorModel
from tests.sentinel.ml.conftest import FAST_NN


def _nn():
    return NNRegressor(**FAST_NN)


def _xgb():
    return XGBRegressorModel(n_estimators=20)


FACTORIES = {
    "nn": _nn,
    "xgb": _xgb,
    "ensemble": lambda: EnsembleModel(_nn(), _xgb()),
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request):
    return FACTORIES[request.param]


@pytest.fixture(scope="module")
def _fits():
    """One fit per model kind on the shared data, made on first use: ``kind -> (model, what
    fit returned)`` (a network's fit costs seconds; the tests below only read the fitted model)."""
    return {}


@pytest.fixture
def fitted(request, factory, data, _fits):
    """``(model, fit's return value)``: this kind's model fitted once on ``data`` per module; the
    ensemble is the session's (conftest ``ensemble_fit``: the same factory, data and seed)."""
    kind = request.node.callspec.params["factory"]
    if kind == "ensemble":
        model, returned = request.getfixturevalue("ensemble_fit")
        ref = factory()  # the session's model is what this factory would fit
        assert model.get_params()["nn_weight"] == ref.get_params()["nn_weight"]
        assert model.nn.get_params() == ref.nn.get_params()
        assert model.xgb.get_params() == ref.xgb.get_params()
        return model, returned
    if kind not in _fits:
        X, y, _ = data
        model = factory()
        _fits[kind] = (model, model.fit(X, y))
    return _fits[kind]


def test_fit_returns_self_and_predicts_one_value_per_row(fitted, data):
    X, y, _ = data
    model, returned = fitted
    assert returned is model
    pred = model.predict(X[:7])
    assert pred.shape == (7,) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert model.n_features_in_ == X.shape[1]


def test_init_stores_hyperparameters_only(factory):
    model = factory()
    assert not [k for k in vars(model) if k.endswith("_")]


def test_same_seed_same_model(factory, fitted, data):
    X, y, _ = data
    a = fitted[0].predict(X)  # a model fitted earlier on the same data
    b = factory().fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_unfitted_predict_raises_clear_error(factory, data):
    with pytest.raises(NotFittedError, match="not fitted"):
        factory().predict(data[0])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y), "NaN"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y), "inf"),
        (lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, y)), "y contains"),
        (lambda X, y: (X[:5], y[:5]), "too few samples"),
        (lambda X, y: (X, np.full_like(y, 0.01)), "constant"),
        (lambda X, y: (X, y[:-1]), "rows"),
        (lambda X, y: (X[:, :, None], y), "2-D"),
    ],
)
def test_bad_input_raises_model_error(factory, data, mutate, message):
    X, y = mutate(*data[:2])
    with pytest.raises(ModelError, match=message):
        factory().fit(X, y)


def test_predict_rejects_wrong_width_and_nan(fitted, data):
    X, y, _ = data
    model = fitted[0]
    with pytest.raises(ModelError, match="features"):
        model.predict(X[:, :5])
    bad = X[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        model.predict(bad)


@pytest.mark.parametrize("cls", [NNRegressor, XGBRegressorModel, EnsembleModel])
def test_get_params_keys_are_the_init_parameters(cls):
    """Hyperparameters are declared once, in ``__init__``; ``get_params`` reads them back."""
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    model = cls()
    params = model.get_params()
    assert list(params) == names
    assert {n: getattr(model, n) for n in names} == params
    assert type(model)(**params).get_params() == params  # clone round trip


def test_every_model_class_uses_the_shared_get_params():
    import sentinel.ml.models as models

    classes = [c for c in vars(models).values() if isinstance(c, type) and hasattr(c, "fit")]
    assert set(classes) == {NNRegressor, XGBRegressorModel, EnsembleModel}
    assert all(issubclass(c, BaseModel) and "get_params" not in vars(c) for c in classes)


def test_get_params_returns_what_init_was_given():
    nn = NNRegressor(hidden_units=(8, 4), dropout=(0.1, 0.0), max_epochs=3, random_state=7)
    p = nn.get_params()
    assert p["hidden_units"] == (8, 4) and p["max_epochs"] == 3 and p["random_state"] == 7
    json.dumps(p)  # stored in nn_metadata.json
    json.dumps(XGBRegressorModel(max_depth=2).get_params())
    ens = EnsembleModel(nn, nn_weight=0.3)
    assert ens.get_params() == {"nn": nn, "xgb": None, "nn_weight": 0.3}
