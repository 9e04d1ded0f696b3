"""Shared tiny data and fitted models for the ML tests (kept small: the suite must stay fast)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest

N_FEATURES = 20
FAST_NN = {"max_epochs": 4, "patience": 2}


def make_data(n: int = 100, seed: int = 0, n_features: int = N_FEATURES):
    """Weekly samples with a learnable signal in feature 0 (returns X, y, dates)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    X[:, 2] *= 0.05  # return_20d-like scale for the momentum baseline
    y = 0.03 * np.tanh(X[:, 0]) + 0.01 * rng.normal(size=n)
    dates = np.datetime64("2015-01-02") + 7 * np.arange(n)
    return X, y, dates


@pytest.fixture(scope="session")
def data():
    return make_data()


@pytest.fixture(scope="session")
def ensemble_fit(data):
    """``(model, what its fit returned)``: the FAST_NN ensemble fitted once per session on
    ``data`` (a network's fit costs seconds; test_contract checks the return value)."""
    from sentinel.ml.models import EnsembleModel, NNRegressor, XGBRegressorModel

    X, y, _ = data
    model = EnsembleModel(NNRegressor(**FAST_NN), XGBRegressorModel(n_estimators=20))
    return model, model.fit(X, y)


@pytest.fixture(scope="session")
def fitted_ensemble(ensemble_fit):
    return ensemble_fit[1]


@pytest.fixture(scope="session")
def trained_many():
    """Ensembles for a few symbols from the batched trainer, shared by store/predictor tests."""
    from sentinel.ml.batched import train_many
    from sentinel.ml.models import NNRegressor, XGBRegressorModel

    datasets = {f"S{i}": make_data(80 + 10 * i, seed=i) for i in range(4)}
    return train_many(datasets, nn=NNRegressor(**FAST_NN), xgb=XGBRegressorModel(n_estimators=20))
