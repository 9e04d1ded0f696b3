"""The numpy inference path must equal Keras; scaler fitted on training rows only."""

from __future__ import annotations

import numpy as np

from sentinel.ml.models import NNRegressor
from tests.sentinel.ml.conftest import FAST_NN


def test_numpy_forward_matches_keras_model(fitted_ensemble, data):
    X = data[0]
    nn = fitted_ensemble.nn_
    keras_model = nn.to_keras()
    Xs = ((X - nn.scaler_mean_) / nn.scaler_scale_).astype(np.float32)
    ref = keras_model(Xs, training=False).numpy()[:, 0]
    np.testing.assert_allclose(nn.predict(X), ref, atol=1e-5)


def test_folded_layers_match_layerwise_forward(fitted_ensemble, data):
    X = data[0]
    nn = fitted_ensemble.nn_
    h = X
    layers = nn.weights_.folded(nn.scaler_mean_, nn.scaler_scale_)
    for k, (w, b) in enumerate(layers):
        h = h @ w + b
        h = np.maximum(h, 0) if k < len(layers) - 1 else h
    np.testing.assert_allclose(h[:, 0], nn.predict(X), atol=1e-5)


def test_scaler_and_state_come_from_fit_rows(data):
    X, y, _ = data
    nn = NNRegressor(**FAST_NN).fit(X[:60], y[:60])
    np.testing.assert_allclose(nn.scaler_mean_, X[:60].mean(axis=0))
    np.testing.assert_allclose(nn.scaler_scale_, X[:60].std(axis=0))
    assert 1 <= nn.best_epoch_ <= nn.n_epochs_ <= FAST_NN["max_epochs"]


def test_output_is_in_return_units_with_target_scaling(data):
    X, y, _ = data
    y_big = y + 5.0  # a network without the folded target scale would predict near 0
    nn = NNRegressor(**FAST_NN).fit(X, y_big)
    assert abs(nn.predict(X).mean() - 5.0) < 1.0
